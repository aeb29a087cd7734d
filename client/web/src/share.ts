// Links to finished videos: /v/{video_id} plays the video the server
// serves at /v1/videos/{video_id}.mp4 with the browser's own controls
// (seeking asks for byte ranges), beside the curve's facts when the server
// still knows them.
import { fromJson } from "@bufbuild/protobuf";
import { RenderHeaderSchema, Style } from "./gen/whirl/v1/animation_pb.js";
import { showFacts } from "./facts.js";
import { mark } from "./animate.js";

const sharePath = /^\/v\/([0-9a-f]{64})$/;

// sharedVideoId is the id a share link's path names, if it is one.
export function sharedVideoId(path: string): string | undefined {
  return sharePath.exec(path)?.[1];
}

// shareURL is the link to a finished video, on this page's origin.
export function shareURL(videoId: string): string {
  return `${location.origin}/v/${videoId}`;
}

// showShared turns the page into the shared video's view.
export async function showShared(videoId: string): Promise<void> {
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  document.querySelector("main")!.hidden = true;
  $("shared").hidden = false;
  const video = $<HTMLVideoElement>("shared-video");
  const status = $("shared-status");
  video.addEventListener("playing", () => mark("playing"));
  video.addEventListener("ended", () => mark("ended"));
  video.addEventListener("seeked", () => mark("seeked"));
  video.addEventListener("error", () => {
    status.textContent = "This server no longer holds this video, or cannot play it. Make a new one from the form.";
  });
  video.src = `/v1/videos/${videoId}.mp4`;
  const res = await fetch(`/v1/videos/${videoId}.json`);
  if (!res.ok) {
    status.textContent = res.status === 404 ? "This server no longer holds this video. Make a new one from the form." : `The server answered ${res.status}.`;
    return;
  }
  const header = fromJson(RenderHeaderSchema, await res.json(), { ignoreUnknownFields: true });
  if (!header.curve) {
    status.textContent = "The server no longer knows this video's curve.";
    return;
  }
  document.title = `whirl: ${header.curve.summary?.symmetry ?? "?"}-fold curve`;
  showFacts($("shared-facts"), header.curve, [
    ["Video", `${header.width}×${header.height}, ${header.frames} frames at ${header.fps} fps`],
    ["Style", header.style === Style.TRACE ? "trace" : "wheels"],
  ]);
  mark("facts");
}
