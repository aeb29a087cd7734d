// Download a finished whirl video by its id from Node.js, with no lease.
//
// A render's header (and `whirl render --json`) gives the video's id;
// GetVideo streams the finished video from the server's cache in the same
// events as RenderAnimation. The file is kept only if its length and SHA-256
// match the stream's trailer. NOT_FOUND means no cache tier holds the video
// any more: render it again.
//
//   npm run get -- --server localhost:50051 VIDEO_ID -o curve.mp4
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AnimationService, type RenderHeader, type RenderTrailer } from "./gen/whirl/v1/animation_pb.js";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: "string", default: "localhost:50051" },
    output: { type: "string", short: "o" },
  },
});
if (!args.output || positionals.length !== 1) {
  console.error("usage: npm run get -- [--server host:port] VIDEO_ID -o FILE");
  process.exit(2);
}
const [videoId] = positionals;
const path = args.output;

const whirl = createClient(AnimationService, createGrpcTransport({ baseUrl: `http://${args.server}` }));
const out = createWriteStream(path);
const sha256 = createHash("sha256");
let size = 0;
let header: RenderHeader | undefined;
let trailer: RenderTrailer | undefined;
try {
  for await (const { event } of whirl.getVideo({ videoId }, { timeoutMs: 600_000 })) {
    switch (event.case) {
      case "header":
        header = event.value;
        break;
      case "chunk":
        sha256.update(event.value.data);
        size += event.value.data.length;
        if (!out.write(event.value.data)) await once(out, "drain");
        break;
      case "trailer":
        trailer = event.value;
        break;
    }
  }
  out.end();
  await once(out, "finish");
  const digest = sha256.digest("hex");
  if (!trailer) throw new Error("the stream ended without a trailer: the video is incomplete");
  if (trailer.totalBytes !== BigInt(size) || trailer.sha256 !== digest) {
    throw new Error(`got ${size} bytes with sha256 ${digest}, the trailer says ${trailer.totalBytes} bytes with sha256 ${trailer.sha256}`);
  }
} catch (err) {
  out.destroy();
  await rm(path, { force: true });
  const e = ConnectError.from(err);
  console.error(`whirl: ${Code[e.code]}: ${e.rawMessage} (request id ${e.metadata.get("x-request-id") ?? "-"})`);
  process.exit(1);
}
const facts = header?.curve ? `${header.frames} frames ${header.width}x${header.height} @${header.fps} fps` : "facts unknown to the server";
console.log(`${path}: ${size} bytes, sha256 ${trailer.sha256} (matches the trailer); ${facts}`);
