// Player feeds an MP4 arriving in pieces to a <video> through Media Source
// Extensions, appending each complete run of boxes as soon as it is whole.
import type { MediaChunk } from "./gen/whirl/v1/animation_pb.js";

export class Player {
  private readonly media = new MediaSource();
  private buffer?: SourceBuffer;
  private readonly ready: Promise<void>;
  private pending: Uint8Array[] = [];
  private readonly queue: Uint8Array<ArrayBuffer>[] = [];
  private appended = 0;
  private failure?: Error;
  private drained?: () => void;

  // onFragment runs after each media fragment is appended; the first one
  // makes the video playable.
  constructor(
    video: HTMLVideoElement,
    mimeType: string,
    private readonly onFragment: (index: number) => void,
  ) {
    if (!MediaSource.isTypeSupported(mimeType)) {
      throw new Error(`this browser cannot play ${mimeType} through Media Source Extensions`);
    }
    this.ready = new Promise((resolve) => {
      this.media.addEventListener("sourceopen", () => {
        URL.revokeObjectURL(video.src);
        this.buffer = this.media.addSourceBuffer(mimeType);
        this.buffer.addEventListener("updateend", () => this.appendedOne());
        this.buffer.addEventListener("error", () => this.fail(new Error("the browser could not decode the video")));
        resolve();
      }, { once: true });
    });
    video.src = URL.createObjectURL(this.media);
  }

  // push takes the stream's chunks in order.
  async push(chunk: MediaChunk): Promise<void> {
    if (this.failure) {
      throw this.failure;
    }
    this.pending.push(chunk.data);
    if (!chunk.segmentEnd) {
      return;
    }
    const segment = concat(this.pending);
    this.pending = [];
    await this.ready;
    this.queue.push(segment);
    this.pump();
  }

  // finish waits until everything is appended, then ends the stream so the
  // video can fire "ended".
  async finish(): Promise<void> {
    if (this.pending.length > 0) {
      this.queue.push(concat(this.pending));
      this.pending = [];
    }
    await this.ready;
    this.pump();
    await new Promise<void>((resolve) => {
      this.drained = resolve;
      this.checkDrained();
    });
    if (this.failure) {
      throw this.failure;
    }
    this.media.endOfStream();
  }

  private pump(): void {
    const b = this.buffer;
    if (!b || b.updating || this.failure || this.queue.length === 0) {
      this.checkDrained();
      return;
    }
    try {
      b.appendBuffer(this.queue.shift()!);
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private appendedOne(): void {
    // The first append is the init segment; every later one a fragment.
    if (this.appended++ > 0) {
      this.onFragment(this.appended - 1);
    }
    this.pump();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.drained && (this.failure || (this.queue.length === 0 && !this.buffer?.updating))) {
      this.drained();
      this.drained = undefined;
    }
  }
}

export function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
