// The generated clients and how their errors read in words.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { AnimationService } from "./gen/whirl/v1/animation_pb.js";
import { QuotaFailureSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export type Animation = Client<typeof AnimationService>;

// The page talks to the server that served it. The binary protobuf codec
// keeps megabytes of video out of base64-in-JSON on both ends.
export function animationClient(baseUrl = location.origin): Animation {
  return createClient(AnimationService, createConnectTransport({ baseUrl, useBinaryFormat: true }));
}

// A client whose calls survive the page going away (fetch keepalive), for
// releasing a lease when the tab closes.
export function keepaliveClient(baseUrl = location.origin): Animation {
  const fetchKeepalive: typeof fetch = (input, init) => fetch(input, { ...init, keepalive: true });
  return createClient(AnimationService, createConnectTransport({ baseUrl, useBinaryFormat: true, fetch: fetchKeepalive }));
}

export function durationMs(d: Duration | undefined): number {
  return d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : 0;
}

// Refusal is what a RESOURCE_EXHAUSTED answer says about when to come back.
export interface Refusal {
  retryMs: number; // the server's google.rpc.RetryInfo hint; 0 when it sent none
  subjects: string[]; // google.rpc.QuotaFailure subjects, e.g. "leases"
}

export function refusal(err: unknown): Refusal | undefined {
  const ce = ConnectError.from(err);
  if (ce.code !== Code.ResourceExhausted) {
    return undefined;
  }
  const retry = ce.findDetails(RetryInfoSchema)[0];
  const subjects = ce.findDetails(QuotaFailureSchema).flatMap((q) => q.violations.map((v) => v.subject));
  return { retryMs: durationMs(retry?.retryDelay), subjects };
}

// describe turns any failure into words: the status code as the server
// named it and its message.
export function describe(err: unknown): string {
  if (err instanceof DOMException || (err instanceof Error && !(err instanceof ConnectError) && err.name !== "ConnectError")) {
    return err.message;
  }
  const ce = ConnectError.from(err);
  const name = Code[ce.code].replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c).toUpperCase();
  return `${name}: ${ce.rawMessage || "no message"}`;
}

export function isCanceled(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Canceled;
}
