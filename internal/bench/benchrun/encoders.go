package benchrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/i420"
	"github.com/whirl-dev/whirl/internal/render"
)

// RenderAlone is render.Frames by itself: the pre-render pass.
type RenderAlone struct {
	Seconds    float64 `json:"seconds"`
	FPS        float64 `json:"fps"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Workers    int     `json:"workers"`
}

// EncoderRuns is one encoder configuration timed on the pre-rendered frames.
type EncoderRuns struct {
	Name     string      `json:"name"`
	Key      string      `json:"key"`
	Settings string      `json:"settings"`
	Runs     []EncodeRun `json:"runs"`
	// Medians over the runs.
	MedianFPS           float64 `json:"median_fps"`
	MedianSeconds       float64 `json:"median_seconds"`
	MedianFirstFragment float64 `json:"median_first_fragment_seconds,omitempty"`
	MedianChildCPU      float64 `json:"median_ffmpeg_cpu_seconds"`
	Bytes               int64   `json:"bytes"`
	SHA256              string  `json:"sha256"`
}

// EncodeRun is one encode of all the frames.
type EncodeRun struct {
	Seconds float64 `json:"seconds"`
	FPS     float64 `json:"fps"`
	Bytes   int64   `json:"bytes"`
	SHA256  string  `json:"sha256"`
	// FirstFragment is Start → the first media segment at the sink, with
	// every frame ready to write; FramesIn is how many frames had been
	// written by then and FirstFrames how many the fragment holds.
	FirstFragment float64 `json:"first_fragment_seconds,omitempty"`
	FramesIn      int64   `json:"frames_written_at_first_fragment,omitempty"`
	FirstFrames   int     `json:"first_fragment_frames,omitempty"`
	ChildCPU      float64 `json:"ffmpeg_cpu_seconds"`
}

func (e *EncoderRuns) summarize() {
	var fps, secs, first, cpu []float64
	for _, r := range e.Runs {
		fps = append(fps, r.FPS)
		secs = append(secs, r.Seconds)
		first = append(first, r.FirstFragment)
		cpu = append(cpu, r.ChildCPU)
	}
	e.MedianFPS, e.MedianSeconds, e.MedianFirstFragment, e.MedianChildCPU = median(fps), median(secs), median(first), median(cpu)
	if len(e.Runs) > 0 {
		e.Bytes, e.SHA256 = e.Runs[0].Bytes, e.Runs[0].SHA256
	}
}

// frameStore holds every frame of the video, one after the other.
type frameStore struct {
	buf  []byte
	size int // bytes per frame
	n    int
	free func()
}

func (s *frameStore) frame(i int) []byte { return s.buf[i*s.size : (i+1)*s.size] }

// preRender draws every frame with render.Frames into a store outside the Go
// heap, timing it.
func preRender(ctx context.Context, c curve.Curve, cfg Config, workers int) (*frameStore, RenderAlone, error) {
	size := i420.Size(cfg.Width, cfg.Height)
	buf, free, err := allocOffHeap(size * cfg.Frames)
	if err != nil {
		return nil, RenderAlone{}, err
	}
	s := &frameStore{buf: buf, size: size, n: cfg.Frames, free: free}
	o := render.Options{Width: cfg.Width, Height: cfg.Height, Frames: cfg.Frames, Style: render.Wheels}
	cpu0 := readCPU()
	start := time.Now()
	n := 0
	err = render.Frames(ctx, c, o, workers, func(f int, yuv []byte) error {
		if f != n {
			return fmt.Errorf("render: frame %d emitted in place of %d", f, n)
		}
		copy(s.frame(f), yuv)
		n++
		return nil
	})
	secs := time.Since(start).Seconds()
	cpu := readCPU().self - cpu0.self
	if err == nil && n != cfg.Frames {
		err = fmt.Errorf("render: %d frames emitted, want %d", n, cfg.Frames)
	}
	if err != nil {
		free()
		return nil, RenderAlone{}, err
	}
	return s, RenderAlone{Seconds: secs, FPS: float64(cfg.Frames) / secs, CPUSeconds: cpu, Workers: workers}, nil
}

// encodeAlone times whirl's encoder on the stored frames: encode.Start +
// WriteFrame × n + Close, or (segmented) encode.EncodeSpans with a
// budget of GOMAXPROCS encoders, as the server runs it.
func encodeAlone(ctx context.Context, frames *frameStore, o encode.Options, segmented bool) (EncodeRun, error) {
	var r EncodeRun
	h := sha256.New()
	var written atomic.Int64
	var start time.Time
	sink := func(seg fmp4.Segment) error {
		if !seg.Init && r.FirstFragment == 0 && seg.Frames > 0 {
			r.FirstFragment = time.Since(start).Seconds()
			r.FramesIn = written.Load()
			r.FirstFrames = seg.Frames
		}
		h.Write(seg.Data)
		r.Bytes += int64(len(seg.Data))
		return nil
	}
	cpu0 := readCPU()
	start = time.Now()
	var err error
	if segmented {
		_, err = encode.EncodeSpans(ctx, encode.SpanConfig{Options: o, Budget: encode.NewBudget(runtime.GOMAXPROCS(0))},
			func(_ context.Context, s encode.Span, _ int, write func([]byte) error) error {
				for i := s.First; i < s.First+s.Count; i++ {
					if err := write(frames.frame(i)); err != nil {
						return err
					}
					written.Add(1)
				}
				return nil
			}, sink)
	} else {
		err = encodeOne(ctx, frames, o, sink, &written)
	}
	if err != nil {
		return r, err
	}
	r.Seconds = time.Since(start).Seconds()
	r.ChildCPU = readCPU().children - cpu0.children
	r.FPS = float64(frames.n) / r.Seconds
	r.SHA256 = hex.EncodeToString(h.Sum(nil))
	return r, nil
}

// encodeOne writes every stored frame to one encoder.
func encodeOne(ctx context.Context, frames *frameStore, o encode.Options, sink func(fmp4.Segment) error, written *atomic.Int64) error {
	enc, err := encode.Start(ctx, o, sink)
	if err != nil {
		return err
	}
	for i := range frames.n {
		if err := enc.WriteFrame(frames.frame(i)); err != nil {
			_ = enc.Close()
			return err
		}
		written.Add(1)
	}
	return enc.Close()
}

// encodeFFmpeg times one ffmpeg process encoding the stored frames with
// codec (ffmpeg's output options) into a file, the frames written to its
// stdin or, with fromFile, read from a raw file written beforehand (not
// timed).
func encodeFFmpeg(ctx context.Context, frames *frameStore, cfg Config, codec []string, fromFile bool) (EncodeRun, error) {
	var r EncodeRun
	dir, err := os.MkdirTemp("", "whirl-bench")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	input := "pipe:0"
	if fromFile {
		input = dir + "/frames.yuv"
		if err := os.WriteFile(input, frames.buf[:frames.n*frames.size], 0o600); err != nil {
			return r, err
		}
	}
	out := dir + "/out.mp4"
	args := append([]string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "yuv420p",
		"-video_size", strconv.Itoa(cfg.Width) + "x" + strconv.Itoa(cfg.Height),
		"-framerate", strconv.Itoa(cfg.FPS), "-i", input}, codec...)
	cpu0 := readCPU()
	start := time.Now()
	cmd := exec.CommandContext(ctx, encode.DefaultFFmpegPath, append(args, "-y", out)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	var werr error
	for i := 0; i < frames.n && !fromFile && werr == nil; i++ {
		_, werr = stdin.Write(frames.frame(i))
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		return r, fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
	}
	if werr != nil {
		return r, werr
	}
	r.Seconds = time.Since(start).Seconds()
	r.ChildCPU = readCPU().children - cpu0.children
	r.FPS = float64(frames.n) / r.Seconds
	data, err := os.ReadFile(out)
	if err != nil {
		return r, err
	}
	sum := sha256.Sum256(data)
	r.Bytes, r.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	return r, nil
}

// plainCodec is ffmpeg with libx264's defaults writing a regular MP4 file,
// the way matplotlib's FFMpegWriter runs it ("-vcodec libx264 -pix_fmt
// yuv420p out.mp4").
func plainCodec() []string { return []string{"-c:v", "libx264", "-pix_fmt", "yuv420p"} }

// sameSettingsCodec is whirl's preset, CRF and GOP with x264's default
// threading, fragmented MP4: what a user would run instead of whirl.
func sameSettingsCodec(cfg Config) []string {
	return []string{"-c:v", "libx264", "-pix_fmt", "yuv420p",
		"-preset", encode.DefaultPreset, "-crf", strconv.Itoa(encode.DefaultCRF),
		"-g", strconv.Itoa(encode.DefaultGOPSeconds * cfg.FPS), "-sc_threshold", "0",
		"-movflags", "empty_moov+default_base_moof+frag_keyframe", "-f", "mp4"}
}
