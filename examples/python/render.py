#!/usr/bin/env python3
"""Render a whirl animation to an MP4 file.

Acquires a lease, streams RenderAnimation to the file with a progress line,
checks the file's length and SHA-256 against the stream's trailer and
releases the lease. When every lease is taken the server refuses with
RESOURCE_EXHAUSTED and says when to come back; the channel's service config
(proto/whirl/v1/service_config.json) retries AcquireLease after that delay,
so there is no retry loop here.

    python3 render.py --server localhost:50051 --seed 42 -o curve.mp4
"""

import argparse
import hashlib
import pathlib
import sys
import uuid

import grpc

from whirl.v1 import animation_pb2 as pb
from whirl.v1 import animation_pb2_grpc as pb_grpc

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
            request_id = dict(err.trailing_metadata() or ()).get("x-request-id", "-")
            sys.exit(f"whirl: {err.code().name}: {err.details()} (request id {request_id})")


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
