// Package encode turns a video's raw frames into one fragmented MP4 (H.264)
// stream. It plans the video as spans of frames (Plan), each encoded by its
// own ffmpeg child (package ffmpeg) from its own renderer, schedules the
// spans of every render on a process-wide Budget of encoders, holds the
// output of spans that run ahead of their turn in a spool, and stitches the
// spans' streams into one (package fmp4) for a sink, in order, as soon as
// each piece is ready.
//
// An Encoder is one ffmpeg encode: planar I420 frames in on its stdin, its
// stdout cut into init and media segments (fmp4.ReadSegments). The child
// lives and dies with the context given to Start: cancelling it kills
// ffmpeg and reaps it. Output is bit-exact: the same frames with the same
// Options give the same bytes, whatever else runs on the machine.
//
// The package knows nothing of gRPC or protobuf.
package encode

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/whirl-dev/whirl/internal/ffmpeg"
	"github.com/whirl-dev/whirl/internal/i420"
)

// Defaults, chosen by measurement (docs/PERFORMANCE.md, "How the defaults
// were chosen", has the tables and how to reproduce them). Preset and CRF: veryfast CRF 23 is the fastest setting
// within 1.05× the bytes of libx264 medium CRF 23 that keeps quality near
// it. GOP: 5 s, the longest span of a planned encode (Plan): the
// default 10 s video is two spans, one per core on a 2-CPU machine, and
// longer GOPs cost fewer bytes ("GOP and spans" in
// docs/PERFORMANCE.md).
// FragmentDuration: 100 ms brings the first fragment to a client soonest
// for about 1% more bytes than 200 ms. Threads: pinned, because the output
// bytes depend on x264's thread count; 1 and 2 give the same bytes, and 2 is
// faster when several encodes run at once.
const (
	DefaultFFmpegPath       = ffmpeg.DefaultPath
	DefaultPreset           = "veryfast"
	DefaultCRF              = 23
	DefaultGOPSeconds       = 5
	DefaultFragmentDuration = 100 * time.Millisecond
	DefaultThreads          = 2
)

// DefaultNice is the niceness the server adds to ffmpeg's (Options.Nice
// itself defaults to 0). Encoding takes most of the CPU while renders run;
// at niceness 0 the server's RPC handling waits for a CPU behind it, and
// its latency shows it (figures in docs/PERFORMANCE.md, "Niceness").
const DefaultNice = 19

// MaxNice is the largest Options.Nice, the kernel's lowest priority.
const MaxNice = ffmpeg.MaxNice

// Presets are the libx264 presets Options.Preset accepts.
func Presets() []string {
	return []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
}

// Options configure one encode. Width, Height and FPS are required; zero
// values of the other fields mean the defaults above.
type Options struct {
	// FFmpegPath is the ffmpeg binary: a path, or a name looked up in PATH.
	FFmpegPath string
	// Width and Height of every frame in pixels; both must be even (4:2:0).
	Width, Height int
	// FPS is the frame rate written into the stream.
	FPS int
	// Frames, when positive, is the exact number of frames the caller will
	// write: WriteFrame refuses more and Close reports fewer as an error.
	Frames int
	// Preset is the libx264 preset (see Presets).
	Preset string
	// CRF is the libx264 constant rate factor, 1–51 (lower: better, bigger).
	CRF int
	// GOP is the distance between keyframes in frames (no scene-cut
	// keyframes); a planned encode also starts each span with one, so
	// its keyframes are at most GOP apart (Plan). Default:
	// DefaultGOPSeconds×FPS.
	GOP int
	// FragmentDuration is the longest fragment; fragments are also cut
	// at every keyframe. Shorter fragments reach a client sooner and cost a
	// little size (a moof per fragment).
	FragmentDuration time.Duration
	// Threads is libx264's thread count. It is pinned rather than derived
	// from the CPU count because the output bytes depend on it.
	Threads int
	// Nice is added to the server's own niceness for ffmpeg, as nice -n
	// does: 0 (the zero value) leaves it alone, 19 is the lowest priority.
	// Encoding is bulk work that takes most of the CPU; a positive Nice
	// lets the kernel run the server's RPC handling first whenever both
	// want a CPU. It changes speed only when the CPUs are contended and
	// never the output bytes. Applied on Linux only.
	Nice int
}

// withDefaults fills zero fields and validates the result.
func (o Options) withDefaults() (Options, error) {
	if o.FFmpegPath == "" {
		o.FFmpegPath = DefaultFFmpegPath
	}
	if o.Preset == "" {
		o.Preset = DefaultPreset
	}
	if o.CRF == 0 {
		o.CRF = DefaultCRF
	}
	if o.GOP == 0 && o.FPS > 0 {
		o.GOP = DefaultGOPSeconds * o.FPS
	}
	if o.FragmentDuration == 0 {
		o.FragmentDuration = DefaultFragmentDuration
	}
	if o.Threads == 0 {
		o.Threads = DefaultThreads
	}
	var errs []error
	if o.Width <= 0 || o.Height <= 0 || o.Width%2 != 0 || o.Height%2 != 0 || o.Width > 8192 || o.Height > 8192 {
		errs = append(errs, fmt.Errorf("size %dx%d: width and height must be even and in 2..8192", o.Width, o.Height))
	}
	if o.FPS <= 0 || o.FPS > 240 {
		errs = append(errs, fmt.Errorf("fps %d: must be in 1..240", o.FPS))
	}
	if o.Frames < 0 {
		errs = append(errs, fmt.Errorf("frames %d: must not be negative", o.Frames))
	}
	if !slices.Contains(Presets(), o.Preset) {
		errs = append(errs, fmt.Errorf("preset %q: must be one of %v", o.Preset, Presets()))
	}
	if o.CRF < 1 || o.CRF > 51 {
		errs = append(errs, fmt.Errorf("crf %d: must be in 1..51", o.CRF))
	}
	if o.GOP < 1 {
		errs = append(errs, fmt.Errorf("gop %d: must be positive", o.GOP))
	}
	if o.FragmentDuration < time.Millisecond {
		errs = append(errs, fmt.Errorf("fragment duration %v: must be at least 1ms", o.FragmentDuration))
	}
	if o.Threads < 1 || o.Threads > 64 {
		errs = append(errs, fmt.Errorf("threads %d: must be in 1..64", o.Threads))
	}
	if o.Nice < 0 || o.Nice > MaxNice {
		errs = append(errs, fmt.Errorf("nice %d: must be in 0..%d", o.Nice, MaxNice))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("encode: invalid options: %w", err)
	}
	return o, nil
}

// command is the ffmpeg child for o (validated): its stdin pipe holds a
// whole frame, so a renderer hands one over in a single write and goes on
// drawing the next while ffmpeg reads it, instead of the two taking turns
// through the default 64 KiB. It changes no byte.
func command(o Options) ffmpeg.Command {
	return ffmpeg.Command{Path: o.FFmpegPath, Args: args(o), Nice: o.Nice, StdinBuffer: i420.Size(o.Width, o.Height)}
}

// args builds ffmpeg's command line (without argv[0]).
func args(o Options) []string {
	return []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
		// input: raw planar 4:2:0 frames on stdin
		"-f", "rawvideo", "-pix_fmt", "yuv420p",
		"-video_size", strconv.Itoa(o.Width) + "x" + strconv.Itoa(o.Height),
		"-framerate", strconv.Itoa(o.FPS),
		"-i", "pipe:0",
		"-map", "0:v:0",
		// H.264 with fixed GOPs: no scene-cut keyframes
		"-c:v", "libx264", "-pix_fmt", "yuv420p",
		"-preset", o.Preset,
		"-crf", strconv.Itoa(o.CRF),
		"-g", strconv.Itoa(o.GOP),
		"-sc_threshold", "0",
		"-threads", strconv.Itoa(o.Threads),
		// x264's threaded lookahead buffers bframes+1 frames more before
		// the first one comes out; without it the bytes are the same and
		// the first fragment is 4 frames earlier
		"-x264-params", "sync-lookahead=0",
		// bit-exact output: no version strings, no metadata. x264 writes
		// its version and options into an SEI NAL unit; drop all SEI.
		"-bsf:v", "filter_units=remove_types=6",
		"-fflags", "+bitexact", "-flags:v", "+bitexact",
		"-map_metadata", "-1", "-map_chapters", "-1",
		// fragmented MP4 to a pipe: moov up front, fragments cut at each
		// keyframe and after at most FragmentDuration, no mfra trailer
		"-movflags", "empty_moov+default_base_moof+frag_keyframe+skip_trailer",
		"-frag_duration", strconv.FormatInt(fragDuration(o).Microseconds(), 10),
		"-flush_packets", "1",
		"-f", "mp4", "pipe:1",
	}
}

// fragDuration is the -frag_duration to give ffmpeg: 0 (cut at keyframes
// only) when FragmentDuration spans a whole GOP anyway.
func fragDuration(o Options) time.Duration {
	if gop := time.Duration(o.GOP) * time.Second / time.Duration(o.FPS); o.FragmentDuration >= gop {
		return 0
	}
	return o.FragmentDuration
}
