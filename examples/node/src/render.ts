// Render a whirl animation to an MP4 file from Node.js.
//
// Acquires a lease, retrying while every lease is taken after the delay the
// server's refusal names; streams RenderAnimation to the file with a progress
// line; checks the file's length and SHA-256 against the stream's trailer;
// releases the lease.
//
//   npm start -- --server localhost:50051 --seed 42 -o curve.mp4
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
import { AnimationService, Style, type RenderTrailer } from "./gen/whirl/v1/animation_pb.js";

const { values: args } = parseArgs({
  options: {
    server: { type: "string", default: "localhost:50051" },
    seed: { type: "string", default: "42" },
    size: { type: "string", default: "360" },
    frames: { type: "string", default: "120" },
    "max-wait": { type: "string", default: "60" }, // seconds to keep asking for a lease
    output: { type: "string", short: "o" },
  },
});
if (!args.output) {
  console.error("usage: npm start -- [--server host:port] [--seed N] [--size PX] [--frames N] -o FILE");
  process.exit(2);
}

type Whirl = Client<typeof AnimationService>;

// Plaintext gRPC over HTTP/2, straight to whirl's port.
const whirl: Whirl = createClient(AnimationService, createGrpcTransport({ baseUrl: `http://${args.server}` }));

try {
  const leaseId = await acquireLease(whirl, Date.now() + Number(args["max-wait"]) * 1000);
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

// acquireLease asks until it gets a lease or the deadline passes. A refusal
// (RESOURCE_EXHAUSTED) carries google.rpc.RetryInfo with the delay after
// which to ask again (also sent as the grpc-retry-pushback-ms trailer).
async function acquireLease(whirl: Whirl, deadline: number): Promise<string> {
  for (;;) {
    try {
      const lease = await whirl.acquireLease({ holder: "node-example" }, { timeoutMs: 10_000 });
      return lease.leaseId;
    } catch (err) {
      const e = ConnectError.from(err);
      const [hint] = e.findDetails(RetryInfoSchema);
      const delayMs = hint?.retryDelay
        ? Number(hint.retryDelay.seconds) * 1000 + hint.retryDelay.nanos / 1e6
        : Number(e.metadata.get("grpc-retry-pushback-ms") ?? 1000);
      if (e.code !== Code.ResourceExhausted || Date.now() + delayMs > deadline) throw e;
      console.error(`every lease is taken; asking again in ${delayMs} ms`);
      await sleep(delayMs);
    }
  }
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
