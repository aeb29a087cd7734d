// One "Animate": a lease (retrying or waiting in line while the pool is
// full), the stream played as it arrives, the file verified, the lease
// released.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { VideoSource, type RenderAnimationRequestSchema, type RenderTrailer } from "./gen/whirl/v1/animation_pb.js";
import { concat, Player } from "./player.js";
import { refusal, type Animation } from "./rpc.js";

type RenderInit = MessageInitShape<typeof RenderAnimationRequestSchema>;
export type RenderRequest = Omit<RenderInit, "leaseId" | "$typeName">;

// View is what a run shows; main.ts draws it into the page.
export interface View {
  status(text: string, retryMs?: number): void;
  progress(framesDone: number, framesTotal: number, bytes: bigint): void;
  lease(id: string | undefined): void;
}

export interface Result {
  file: Blob;
  trailer: RenderTrailer;
}

// Marks named here are performance marks the page leaves for anyone timing
// it (the browser tests do): performance.getEntriesByName("whirl:...").
export function mark(name: string): void {
  performance.mark(`whirl:${name}`);
}

export async function animate(client: Animation, req: RenderRequest, video: HTMLVideoElement, view: View, signal: AbortSignal): Promise<Result> {
  mark("animate");
  const leaseId = await acquire(client, view, signal);
  view.lease(leaseId);
  try {
    return await stream(client, { ...req, leaseId }, video, view, signal);
  } finally {
    view.lease(undefined);
    // Best effort: the lease's TTL frees the slot anyway.
    client.releaseLease({ leaseId }).catch(() => {});
  }
}

// acquire asks for a lease until it gets one, waiting as long as the
// server's RetryInfo says each time the pool is full.
async function acquire(client: Animation, view: View, signal: AbortSignal): Promise<string> {
  view.status("Asking for a render slot…");
  // One id for every attempt of this acquire: a retry whose reply was lost
  // gets the same lease back instead of a second slot.
  const requestId = crypto.randomUUID();
  for (;;) {
    try {
      const lease = await client.acquireLease({ holder: "web page", requestId }, { signal });
      mark("lease");
      return lease.leaseId;
    } catch (err) {
      const r = refusal(err);
      if (!r) {
        throw err;
      }
      mark("refused");
      const wait = r.retryMs > 0 ? r.retryMs : 1000;
      const why = r.subjects.includes("acquire_rate") ? "Too many requests from this address" : "All render slots are taken";
      view.status(`${why}. The server says to retry in ${(wait / 1000).toFixed(1)} s; retrying then…`, wait);
      await sleep(wait, signal);
    }
  }
}

async function stream(client: Animation, req: RenderInit, video: HTMLVideoElement, view: View, signal: AbortSignal): Promise<Result> {
  const parts: Uint8Array[] = [];
  let player: Player | undefined;
  let trailer: RenderTrailer | undefined;
  let frames = 0;
  let bytes = 0n;
  for await (const res of client.renderAnimation(req, { signal })) {
    const ev = res.event;
    switch (ev.case) {
      case "progress":
        if (ev.value.queuePosition > 0) {
          mark("queued");
          view.status(`Waiting in line for the renderer: position ${ev.value.queuePosition}.`);
        } else {
          view.progress(ev.value.framesDone, ev.value.framesTotal, ev.value.bytesSent);
        }
        break;
      case "header":
        mark("header");
        frames = ev.value.frames;
        view.status(`Rendering ${ev.value.width}×${ev.value.height}, ${frames} frames…`);
        player = new Player(video, ev.value.mimeType, (n) => {
          if (n === 1) {
            mark("first-fragment");
            video.play().catch((e: unknown) => view.status(`Playback did not start: ${String(e)}`));
          }
        });
        break;
      case "chunk":
        if (!player) {
          throw new Error("the server sent video before its header");
        }
        parts.push(ev.value.data);
        bytes += BigInt(ev.value.data.length);
        await player.push(ev.value);
        break;
      case "trailer":
        mark("trailer");
        trailer = ev.value;
        view.progress(frames, frames, bytes);
        break;
    }
  }
  if (!trailer || !player) {
    throw new Error("the stream ended without a trailer: the video is incomplete");
  }
  await player.finish();
  const file = concat(parts);
  await verify(file, trailer);
  mark("verified");
  const source = trailer.source === VideoSource.CACHED ? " (from the server's cache)" : trailer.source === VideoSource.SHARED ? " (shared with another viewer's render)" : "";
  view.status(`Done: ${trailer.frames} frames, ${trailer.totalBytes} bytes, SHA-256 verified${source}.`);
  return { file: new Blob([file], { type: "video/mp4" }), trailer };
}

async function verify(file: Uint8Array<ArrayBuffer>, trailer: RenderTrailer): Promise<void> {
  if (BigInt(file.length) !== trailer.totalBytes) {
    throw new Error(`received ${file.length} bytes but the server sent ${trailer.totalBytes}`);
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", file));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== trailer.sha256) {
    throw new Error(`SHA-256 mismatch: received ${hex}, the server sent ${trailer.sha256}`);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}
