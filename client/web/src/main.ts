// The page: choices, a still preview that follows them, the curve's facts,
// and "Animate", which plays the video while the server renders it.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Shape, Style, type GenerateCurveRequestSchema } from "./gen/whirl/v1/animation_pb.js";
import { animate, mark, type RenderRequest } from "./animate.js";
import { animationClient, describe, isCanceled, keepaliveClient } from "./rpc.js";
import { showFacts } from "./facts.js";
import { shareURL, sharedVideoId, showShared } from "./share.js";

const PREVIEW_SIDE = 320;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>("choices");
const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;
const video = $<HTMLVideoElement>("video");
const statusEl = $("status");
const errorEl = $("error");
const download = $<HTMLAnchorElement>("download");
const progress = $<HTMLProgressElement>("progress");
const progressText = $("progress-text");
const copyLink = $<HTMLButtonElement>("copy-link");
const shareLink = $<HTMLAnchorElement>("share-link");

const client = animationClient();
const closing = keepaliveClient();
let run: AbortController | undefined;
let preview: AbortController | undefined;
let leaseHeld: string | undefined;

function fillSelect(name: string, from: number, to: number): void {
  const sel = field(name) as HTMLSelectElement;
  sel.add(new Option("random", "0"));
  for (let i = from; i <= to; i++) {
    sel.add(new Option(String(i)));
  }
}

// Choices come from and go to the address bar, so a link shows the same curve.
function loadChoices(): void {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of q) {
    const f = field(k);
    if (f) {
      f.value = v;
    }
  }
}

function saveChoices(): void {
  const q = new URLSearchParams();
  for (const el of Array.from(form.elements)) {
    const f = el as HTMLInputElement;
    if (f.name && f.value !== "") {
      q.set(f.name, f.value);
    }
  }
  history.replaceState(null, "", `?${q}`);
}

function num(name: string): number {
  return Number(field(name).value) || 0;
}

function curveRequest(): MessageInitShape<typeof GenerateCurveRequestSchema> {
  const shape = num("shape") as Shape;
  const c = field("congruency").value;
  return {
    seed: BigInt(field("seed").value || "0"),
    wheels: num("wheels"),
    kFold: num("kfold"),
    congruency: c === "" ? undefined : Number(c),
    shapes: shape === Shape.UNSPECIFIED ? [] : [shape],
  };
}

function renderRequest(): RenderRequest {
  const side = num("size");
  return {
    source: { case: "generate", value: curveRequest() },
    video: { width: side, height: side, frames: num("frames"), fps: num("fps"), style: num("style") as Style },
  };
}

function showError(err: unknown): void {
  errorEl.textContent = `Error: ${describe(err)}`;
  errorEl.hidden = false;
}

function clearError(): void {
  errorEl.hidden = true;
  errorEl.textContent = "";
}

// updatePreview draws the finished curve for the current choices; a newer
// choice cancels an older preview still on its way.
async function updatePreview(): Promise<void> {
  if (!form.checkValidity()) {
    return;
  }
  saveChoices();
  preview?.abort();
  const ctl = (preview = new AbortController());
  const img = $<HTMLImageElement>("still");
  try {
    const res = await client.renderStill(
      { source: { case: "generate", value: curveRequest() }, width: PREVIEW_SIDE, height: PREVIEW_SIDE, style: num("style") as Style },
      { signal: ctl.signal },
    );
    URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(new Blob([res.png as Uint8Array<ArrayBuffer>], { type: "image/png" }));
    showFacts($("facts"), res.curve);
    clearError();
  } catch (err) {
    if (!isCanceled(err) && !ctl.signal.aborted) {
      showError(err);
    }
  }
}

async function onAnimate(ev: Event): Promise<void> {
  ev.preventDefault();
  if (!form.reportValidity() || run) {
    return;
  }
  clearError();
  download.hidden = true;
  copyLink.hidden = shareLink.hidden = true;
  URL.revokeObjectURL(download.href);
  const ctl = (run = new AbortController());
  $<HTMLButtonElement>("animate").disabled = true;
  $<HTMLButtonElement>("cancel").disabled = false;
  const req = renderRequest();
  try {
    const { file, trailer } = await animate(client, req, video, view, ctl.signal);
    download.href = URL.createObjectURL(file);
    download.download = `whirl-${field("seed").value}.mp4`;
    download.hidden = false;
    shareLink.href = shareLink.textContent = shareURL(trailer.videoId);
    copyLink.hidden = false;
  } catch (err) {
    statusEl.textContent = ctl.signal.aborted ? "Canceled." : "Failed.";
    if (!ctl.signal.aborted) {
      showError(err);
    }
  } finally {
    run = undefined;
    $<HTMLButtonElement>("animate").disabled = false;
    $<HTMLButtonElement>("cancel").disabled = true;
  }
}

const view = {
  status(text: string, retryMs?: number): void {
    statusEl.textContent = text;
    if (retryMs !== undefined) {
      statusEl.dataset.retryMs = String(retryMs);
    }
  },
  progress(done: number, total: number, bytes: bigint): void {
    progress.max = Math.max(total, 1);
    progress.value = done;
    progressText.textContent = `${done} / ${total} frames, ${(Number(bytes) / 1024).toFixed(0)} KiB`;
  },
  lease(id: string | undefined): void {
    leaseHeld = id;
  },
};

// copyShareLink puts the finished video's link on the clipboard, and shows
// it too (a page without clipboard access still lets it be copied by hand).
async function copyShareLink(): Promise<void> {
  shareLink.hidden = false;
  try {
    await navigator.clipboard.writeText(shareLink.href);
    statusEl.textContent = "Link copied: anyone with it can watch this video.";
  } catch {
    statusEl.textContent = "Copy the link below to share this video.";
  }
}

function startForm(): void {
  fillSelect("wheels", 3, 13);
  fillSelect("kfold", 2, 12);
  loadChoices();
  form.addEventListener("submit", (ev) => void onAnimate(ev));
  form.addEventListener("change", () => void updatePreview());
  $("random").addEventListener("click", () => {
    const r = crypto.getRandomValues(new Uint32Array(1))[0];
    field("seed").value = String(r);
    void updatePreview();
  });
  $("cancel").addEventListener("click", () => run?.abort());
  copyLink.addEventListener("click", () => void copyShareLink());
  video.addEventListener("playing", () => mark("playing"), { once: false });
  video.addEventListener("ended", () => mark("ended"));
  video.addEventListener("error", () => showError(new Error(`the video element failed: ${video.error?.message || "code " + video.error?.code}`)));
  // On tab close, give the slot back now rather than when the TTL runs out.
  addEventListener("pagehide", () => {
    if (leaseHeld) {
      closing.releaseLease({ leaseId: leaseHeld }).catch(() => {});
    }
  });
  void updatePreview();
}

// A share link (/v/{video_id}) shows that video alone; any other path, the
// form.
const shared = sharedVideoId(location.pathname);
if (shared) {
  void showShared(shared);
} else {
  startForm();
}
