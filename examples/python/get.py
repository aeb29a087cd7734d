#!/usr/bin/env python3
"""Download a finished whirl video by its id, with no lease.

A render's header (and `whirl render --json`) gives the video's id; GetVideo
streams the finished video from the server's cache in the same events as
RenderAnimation. The file is kept only if its length and SHA-256 match the
stream's trailer. NOT_FOUND means no cache tier holds the video any more:
render it again.

    python3 get.py --server localhost:50051 VIDEO_ID -o curve.mp4
"""

import argparse
import hashlib
import pathlib
import sys

import grpc

from whirl.v1 import animation_pb2 as pb
from whirl.v1 import animation_pb2_grpc as pb_grpc


def main():
    p = argparse.ArgumentParser(description="Download a finished whirl video by its id.")
    p.add_argument("--server", default="localhost:50051")
    p.add_argument("video_id")
    p.add_argument("-o", "--output", type=pathlib.Path, required=True)
    args = p.parse_args()

    with grpc.insecure_channel(args.server) as channel:
        whirl = pb_grpc.AnimationServiceStub(channel)
        try:
            get(whirl, args)
        except grpc.RpcError as err:
            request_id = dict(err.trailing_metadata() or ()).get("x-request-id", "-")
            sys.exit(f"whirl: {err.code().name}: {err.details()} (request id {request_id})")


def get(whirl, args):
    digest, size, header, trailer = hashlib.sha256(), 0, None, None
    try:
        with args.output.open("wb") as out:
            for event in whirl.GetVideo(pb.GetVideoRequest(video_id=args.video_id), timeout=600):
                kind = event.WhichOneof("event")
                if kind == "header":
                    header = event.header
                elif kind == "chunk":
                    out.write(event.chunk.data)
                    digest.update(event.chunk.data)
                    size += len(event.chunk.data)
                elif kind == "trailer":
                    trailer = event.trailer
        if trailer is None:
            sys.exit("whirl: the stream ended without a trailer: the video is incomplete")
        if (trailer.total_bytes, trailer.sha256) != (size, digest.hexdigest()):
            sys.exit(f"whirl: got {size} bytes with sha256 {digest.hexdigest()}, "
                     f"the trailer says {trailer.total_bytes} bytes with sha256 {trailer.sha256}")
    except BaseException:
        args.output.unlink(missing_ok=True)
        raise
    facts = "facts unknown to the server"
    if header.HasField("curve"):
        facts = f"{header.frames} frames {header.width}x{header.height} @{header.fps} fps"
    print(f"{args.output}: {size} bytes, sha256 {trailer.sha256} (matches the trailer); {facts}")


if __name__ == "__main__":
    main()
