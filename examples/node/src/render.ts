// Render a whirl animation to an MP4 file from Node.js.
//
// Acquires a lease under the AcquireLease retry policy of whirl's gRPC
// service config (proto/whirl/v1/service_config.json), waiting out the delay
// a refusal names; streams RenderAnimation to the file with a progress line;
// checks the file's length and SHA-256 against the stream's trailer; releases
// the lease.
//
//   npm start -- --server localhost:50051 --seed 42 -o curve.mp4
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { AnimationService, Style, type RenderTrailer } from "./gen/whirl/v1/animation_pb.js";

const { values: args } = parseArgs({
  options: {
    server: { type: "string", default: "localhost:50051" },
    seed: { type: "string", default: "42" },
    size: { type: "string", default: "360" },
    frames: { type: "string", default: "120" },
    "service-config": { type: "string", default: fileURLToPath(new URL("../../../proto/whirl/v1/service_config.json", import.meta.url)) },
    output: { type: "string", short: "o" },
  },
});
if (!args.output) {
  console.error("usage: npm start -- [--server host:port] [--service-config FILE] [--seed N] [--size PX] [--frames N] -o FILE");
  process.exit(2);
}

type Whirl = Client<typeof AnimationService>;
type RetryPolicy = { maxAttempts: number; initialBackoff: string; maxBackoff: string; backoffMultiplier: number; retryableStatusCodes: string[] };
type ServiceConfig = { methodConfig: { name: { service: string; method?: string }[]; retryPolicy?: RetryPolicy }[] };

// Plaintext gRPC over HTTP/2, straight to whirl's port.
const whirl: Whirl = createClient(AnimationService, createGrpcTransport({ baseUrl: `http://${args.server}` }));

// connect-es has no gRPC service config: this example applies the policy.
const serviceConfig: ServiceConfig = JSON.parse(await readFile(args["service-config"], "utf8"));
const acquirePolicy = serviceConfig.methodConfig.find((m) => m.name.some((n) => n.method === "AcquireLease"))?.retryPolicy;
if (!acquirePolicy) throw new Error(`${args["service-config"]}: no retry policy for AcquireLease`);

try {
  const leaseId = await acquireLease(whirl, acquirePolicy);
  try {
    await render(whirl, leaseId, args.output);
  } finally {
    await whirl.releaseLease({ leaseId }, { timeoutMs: 10_000 });
  }
} catch (err) {
  const e = ConnectError.from(err);
  console.error(`whirl: ${Code[e.code]}: ${e.rawMessage} (request id ${e.metadata.get("x-request-id") ?? "-"})`);
  process.exit(1);
}

// acquireLease asks for a lease, and again while the policy allows. A
// refusal (RESOURCE_EXHAUSTED) names when to come back: wait that long
// rather than the policy's exponential backoff, as gRPC's own retries do.
async function acquireLease(whirl: Whirl, policy: RetryPolicy): Promise<string> {
  const retryable = new Set(policy.retryableStatusCodes.map((name) => codeFromString(name.toLowerCase())));
  let backoffMs = parseFloat(policy.initialBackoff) * 1000;
  // One request id for every attempt: a retry whose first reply was lost
  // gets that same lease back, never a second slot.
  const requestId = randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      const lease = await whirl.acquireLease({ holder: "node-example", requestId }, { timeoutMs: 10_000 });
      return lease.leaseId;
    } catch (err) {
      const e = ConnectError.from(err);
      if (!retryable.has(e.code) || attempt >= policy.maxAttempts) throw e;
      const delayMs = serverHintMs(e) ?? Math.random() * backoffMs;
      backoffMs = Math.min(backoffMs * policy.backoffMultiplier, parseFloat(policy.maxBackoff) * 1000);
      console.error(`${Code[e.code]}: ${e.rawMessage}; asking again in ${Math.round(delayMs)} ms`);
      await sleep(delayMs);
    }
  }
}

// serverHintMs is the delay a refusal asks for: its google.rpc.RetryInfo, else
// its grpc-retry-pushback-ms trailer.
function serverHintMs(e: ConnectError): number | undefined {
  const [info] = e.findDetails(RetryInfoSchema);
  if (info?.retryDelay) return Number(info.retryDelay.seconds) * 1000 + info.retryDelay.nanos / 1e6;
  const pushback = e.metadata.get("grpc-retry-pushback-ms");
  return pushback === null ? undefined : Number(pushback);
}

async function render(whirl: Whirl, leaseId: string, path: string): Promise<void> {
  const out = createWriteStream(path);
  const sha256 = createHash("sha256");
  let size = 0;
  let trailer: RenderTrailer | undefined;
  try {
    const stream = whirl.renderAnimation(
      {
        leaseId,
        source: { case: "generate", value: { seed: BigInt(args.seed) } },
        video: { width: Number(args.size), height: Number(args.size), frames: Number(args.frames), style: Style.WHEELS },
      },
      { timeoutMs: 600_000 },
    );
    for await (const { event } of stream) {
      switch (event.case) {
        case "chunk":
          sha256.update(event.value.data);
          size += event.value.data.length;
          if (!out.write(event.value.data)) await once(out, "drain");
          break;
        case "progress": {
          const p = event.value;
          const line = p.queuePosition ? `queued, position ${p.queuePosition}` : `frame ${p.framesDone}/${p.framesTotal}, ${size} bytes`;
          process.stderr.write(process.stderr.isTTY ? `\r${line.padEnd(40)}` : `${line}\n`);
          break;
        }
        case "trailer":
          trailer = event.value;
          break;
      }
    }
    out.end();
    await once(out, "finish");
    process.stderr.write(process.stderr.isTTY ? "\n" : "");
    const digest = sha256.digest("hex");
    if (!trailer) throw new Error("the stream ended without a trailer: the video is incomplete");
    if (trailer.totalBytes !== BigInt(size) || trailer.sha256 !== digest) {
      throw new Error(`got ${size} bytes with sha256 ${digest}, the trailer says ${trailer.totalBytes} bytes with sha256 ${trailer.sha256}`);
    }
  } catch (err) {
    out.destroy();
    await rm(path, { force: true });
    throw err;
  }
  console.log(`${path}: ${size} bytes, sha256 ${trailer.sha256} (matches the trailer)`);
}
