// Render a whirl animation to an MP4 file from Node.js.
//
// Acquires a lease under the AcquireLease retry policy of whirl's gRPC
// service config (proto/whirl/v1/service_config.json), waiting out the delay
// a refusal names; streams RenderAnimation to the file with a progress line;
// checks the file's length and SHA-256 against the stream's trailer; releases
// the lease. Failures are told apart by the whirl.v1.ErrorReason each
// status carries in its google.rpc.ErrorInfo.
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
import { ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { AnimationService, Style, type RenderTrailer } from "./gen/whirl/v1/animation_pb.js";
import { ErrorReason } from "./gen/whirl/v1/error_reason_pb.js";

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
  const reason = reasonOf(e);
  console.error(`whirl: ${Code[e.code]} (${ErrorReason[reason]}): ${e.rawMessage} (request id ${e.metadata.get("x-request-id") ?? "-"})`);
  const advice = adviceFor(reason);
  if (advice) console.error(`whirl: ${advice}`);
  process.exit(1);
}

// reasonOf is why whirl refused or ended a call: the reason of the
// google.rpc.ErrorInfo in whirl's domain, or UNSPECIFIED for an error the
// client saw by itself (no server reached, its own deadline) or a reason
// newer than this example.
function reasonOf(e: ConnectError): ErrorReason {
  const info = e.findDetails(ErrorInfoSchema).find((i) => i.domain === "whirl.v1");
  const reason = info ? ErrorReason[info.reason as keyof typeof ErrorReason] : undefined;
  return reason ?? ErrorReason.ERROR_REASON_UNSPECIFIED;
}

// adviceFor says what a user can do about a failure, by its reason.
function adviceFor(reason: ErrorReason): string | undefined {
  switch (reason) {
    case ErrorReason.LEASE_CAPACITY:
    case ErrorReason.LEASE_QUEUE_FULL:
    case ErrorReason.QUEUE_FULL:
    case ErrorReason.QUEUE_WAIT_EXCEEDED:
      return "the server is busy; try again later";
    case ErrorReason.LEASE_NOT_FOUND:
    case ErrorReason.LEASE_MAX_AGE:
    case ErrorReason.LEASE_RELEASED:
    case ErrorReason.LEASE_REVOKED:
    case ErrorReason.LEASE_LOST:
      return "the lease is gone; run again for a new one";
    case ErrorReason.RENDERER_UNAVAILABLE:
    case ErrorReason.SHUTTING_DOWN:
    case ErrorReason.LEASE_STORE_UNAVAILABLE:
      return "this server cannot render now; try another replica or later";
    case ErrorReason.BAD_REQUEST:
      return "check --size (even), --frames and --seed";
    default:
      return undefined;
  }
}

// acquireLease asks for a lease, and again while the policy allows. A
// refusal for want of capacity or rate names when to come back: wait that
// long rather than the policy's exponential backoff, as gRPC's own retries
// do. A server shutting down or without its lease store is asked again
// after the backoff (another replica may answer); other failures end here.
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
      const reason = reasonOf(e);
      let delayMs: number;
      switch (reason) {
        case ErrorReason.LEASE_CAPACITY:
        case ErrorReason.LEASE_QUEUE_FULL:
        case ErrorReason.CLIENT_RATE_LIMITED:
          delayMs = serverHintMs(e) ?? Math.random() * backoffMs;
          break;
        case ErrorReason.SHUTTING_DOWN:
        case ErrorReason.LEASE_STORE_UNAVAILABLE:
          delayMs = Math.random() * backoffMs;
          break;
        case ErrorReason.ERROR_REASON_UNSPECIFIED: // not whirl's answer: by the policy's codes
          if (!retryable.has(e.code)) throw e;
          delayMs = Math.random() * backoffMs;
          break;
        default:
          throw e;
      }
      if (attempt >= policy.maxAttempts) throw e;
      backoffMs = Math.min(backoffMs * policy.backoffMultiplier, parseFloat(policy.maxBackoff) * 1000);
      console.error(`${Code[e.code]} (${ErrorReason[reason]}): ${e.rawMessage}; asking again in ${Math.round(delayMs)} ms`);
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
