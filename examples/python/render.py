#!/usr/bin/env python3
"""Render a whirl animation to an MP4 file.

Acquires a lease, streams RenderAnimation to the file with a progress line,
checks the file's length and SHA-256 against the stream's trailer and
releases the lease. When every lease is taken the server refuses with
RESOURCE_EXHAUSTED and says when to come back; the channel's service config
(proto/whirl/v1/service_config.json) retries AcquireLease after that delay,
so there is no retry loop here. Other failures are told apart by the
whirl.v1.ErrorReason in the google.rpc.ErrorInfo every whirl status carries.

    python3 render.py --server localhost:50051 --seed 42 -o curve.mp4
"""

import argparse
import hashlib
import pathlib
import sys
import uuid

import grpc

from google.rpc import error_details_pb2, status_pb2
from whirl.v1 import animation_pb2 as pb
from whirl.v1 import animation_pb2_grpc as pb_grpc
from whirl.v1 import error_reason_pb2 as reasons

REPO = pathlib.Path(__file__).resolve().parents[2]


def main():
    p = argparse.ArgumentParser(description="Render a whirl animation to an MP4 file.")
    p.add_argument("--server", default="localhost:50051")
    p.add_argument("--service-config", type=pathlib.Path,
                   default=REPO / "proto/whirl/v1/service_config.json")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--size", type=int, default=360, help="width and height in pixels (even)")
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("-o", "--output", type=pathlib.Path, required=True)
    args = p.parse_args()

    options = [("grpc.service_config", args.service_config.read_text())]
    with grpc.insecure_channel(args.server, options=options) as channel:
        whirl = pb_grpc.AnimationServiceStub(channel)
        try:
            # One request id for the call and the channel's retries of it: a
            # retry whose first reply was lost gets that same lease back.
            request = pb.AcquireLeaseRequest(holder="python-example", request_id=str(uuid.uuid4()))
            lease = whirl.AcquireLease(request, timeout=60)
            try:
                render(whirl, lease.lease_id, args)
            finally:
                whirl.ReleaseLease(pb.ReleaseLeaseRequest(lease_id=lease.lease_id), timeout=10)
        except grpc.RpcError as err:
            trailers = dict(err.trailing_metadata() or ())
            reason = reason_of(trailers)
            print(f"whirl: {err.code().name} ({reasons.ErrorReason.Name(reason)}): {err.details()} "
                  f"(request id {trailers.get('x-request-id', '-')})", file=sys.stderr)
            advice = advice_for(reason)
            if advice:
                print(f"whirl: {advice}", file=sys.stderr)
            sys.exit(1)


def reason_of(trailers):
    """Why whirl refused or ended the call: the reason of the ErrorInfo in
    whirl's domain among the status details (the grpc-status-details-bin
    trailer), or ERROR_REASON_UNSPECIFIED when the error is the client's own
    (no server reached, its deadline) or the reason newer than this file."""
    raw = trailers.get("grpc-status-details-bin")
    if raw is None:
        return reasons.ERROR_REASON_UNSPECIFIED
    status = status_pb2.Status.FromString(raw)
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == "whirl.v1":
            return reasons.ErrorReason.Value(info.reason) if info.reason in reasons.ErrorReason.keys() \
                else reasons.ERROR_REASON_UNSPECIFIED
    return reasons.ERROR_REASON_UNSPECIFIED


def advice_for(reason):
    """What a user can do about a failure, by its reason."""
    match reason:
        case (reasons.LEASE_CAPACITY | reasons.LEASE_QUEUE_FULL | reasons.QUEUE_FULL
              | reasons.QUEUE_WAIT_EXCEEDED):
            return "the server is busy; try again later"
        case (reasons.LEASE_NOT_FOUND | reasons.LEASE_MAX_AGE | reasons.LEASE_RELEASED
              | reasons.LEASE_REVOKED | reasons.LEASE_LOST):
            return "the lease is gone; run again for a new one"
        case reasons.RENDERER_UNAVAILABLE | reasons.SHUTTING_DOWN | reasons.LEASE_STORE_UNAVAILABLE:
            return "this server cannot render now; try another replica or later"
        case reasons.BAD_REQUEST:
            return "check --size (even), --frames and --seed"
    return None


def render(whirl, lease_id, args):
    request = pb.RenderAnimationRequest(
        lease_id=lease_id,
        generate=pb.GenerateCurveRequest(seed=args.seed),
        video=pb.VideoOptions(width=args.size, height=args.size, frames=args.frames,
                              style=pb.STYLE_WHEELS),
    )
    digest, size, trailer = hashlib.sha256(), 0, None
    try:
        with args.output.open("wb") as out:
            for event in whirl.RenderAnimation(request, timeout=600):
                kind = event.WhichOneof("event")
                if kind == "chunk":
                    out.write(event.chunk.data)
                    digest.update(event.chunk.data)
                    size += len(event.chunk.data)
                elif kind == "progress":
                    show_progress(event.progress, size)
                elif kind == "trailer":
                    trailer = event.trailer
        if sys.stderr.isatty():
            print(file=sys.stderr)  # end the progress line
        if trailer is None:
            sys.exit("whirl: the stream ended without a trailer: the video is incomplete")
        if (trailer.total_bytes, trailer.sha256) != (size, digest.hexdigest()):
            sys.exit(f"whirl: got {size} bytes with sha256 {digest.hexdigest()}, "
                     f"the trailer says {trailer.total_bytes} bytes with sha256 {trailer.sha256}")
    except BaseException:
        args.output.unlink(missing_ok=True)
        raise
    print(f"{args.output}: {size} bytes, sha256 {trailer.sha256} (matches the trailer)")


def show_progress(progress, size):
    if progress.queue_position:
        line = f"queued, position {progress.queue_position}"
    else:
        line = f"frame {progress.frames_done}/{progress.frames_total}, {size} bytes"
    print(f"\r{line:<40}", end="" if sys.stderr.isatty() else "\n", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
