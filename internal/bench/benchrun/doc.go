// Package benchrun measures whirl end to end against its own encoder and
// the matplotlib baseline, all in one run (the machine is noisy: only
// figures taken in the same run are compared). The bench command
// (internal/bench) is its flags; Run is the measurement.
//
// It measures, for one curve (curve.Params{Seed, Wheels}, WHEELS style):
//
//  1. end-to-end frames/s at a real gRPC client over loopback TCP, against an
//     in-process server built like production (service.NewServer with the
//     default Config apart from an in-memory lease registry): acquire a lease,
//     RenderAnimation, receive every byte, check the SHA-256 against the
//     trailer; frames/s = frames / (request sent → trailer received); median
//     of --reps runs;
//  2. the time from the request to the first complete media fragment at the
//     client (the chunk with segment_end after the init segment);
//  3. the MP4's size;
//  4. ffmpeg alone on the same frames pre-rendered into memory: (a) whirl's
//     encoder as the server runs it (encode.EncodeSpans, a budget of
//     GOMAXPROCS encoders), (b) libx264 medium/CRF 23 (encode.Start), (c) one
//     ffmpeg with whirl's preset, CRF and GOP and x264's own threading
//     reading the frames from a raw file (what a user would run instead),
//     plus for reference (d) ffmpeg's plain defaults writing a regular MP4
//     file, as matplotlib's FFMpegWriter does;
//  5. optionally the matplotlib baseline, the original system's pipeline
//     (baseline/seed_matplotlib.py);
//  6. (Concurrent) five renders at once in this process, encoded one ffmpeg
//     per render as before segments and as segments under one budget,
//
// then checks the targets: end-to-end ≥ 0.9 × (c), ≥ 4.5 × matplotlib,
// first fragment ≤ 0.25 s, size ≤ 1.05 × (b), five renders' aggregate
// frames/s segmented ≥ single-process.
//
// Without --cpuprofile the runs are interleaved (end-to-end, (a), (b), (c),
// then again) so that drift in machine load hits every figure alike; with it
// the end-to-end runs go back to back, inside the profile, and the encoder
// runs follow. The profile covers this process only: ffmpeg's CPU time is
// reported separately (the "cpu" columns, from getrusage).
//
// A new measurement (a cache hit, renders sharing one encode, parallel
// encoding) is a Config switch, a method on bench beside EndToEnd that
// returns its runs, a Report field for them, and its targets in judge.
package benchrun
