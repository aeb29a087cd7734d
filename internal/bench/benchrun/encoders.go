package benchrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
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

// encodeAlone times encode.Start + WriteFrame × n + Close on the stored
// frames.
func encodeAlone(ctx context.Context, frames *frameStore, o encode.Options) (EncodeRun, error) {
	var r EncodeRun
	h := sha256.New()
	var written atomic.Int64
	var start time.Time
	sink := func(seg encode.Segment) error {
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
	enc, err := encode.Start(ctx, o, sink)
	if err != nil {
		return r, err
	}
	for i := range frames.n {
		if err := enc.WriteFrame(frames.frame(i)); err != nil {
			_ = enc.Close()
			return r, err
		}
		written.Add(1)
	}
	if err := enc.Close(); err != nil {
		return r, err
	}
	r.Seconds = time.Since(start).Seconds()
	r.ChildCPU = readCPU().children - cpu0.children
	r.FPS = float64(frames.n) / r.Seconds
	r.SHA256 = hex.EncodeToString(h.Sum(nil))
	return r, nil
}

// encodePlain times ffmpeg with libx264's defaults writing a regular MP4
// file, the way matplotlib's FFMpegWriter runs it (raw frames on stdin,
// "-vcodec libx264 -pix_fmt yuv420p out.mp4").
func encodePlain(ctx context.Context, frames *frameStore, cfg Config) (EncodeRun, error) {
	var r EncodeRun
	dir, err := os.MkdirTemp("", "whirl-bench")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	out := dir + "/plain.mp4"
	cpu0 := readCPU()
	start := time.Now()
	cmd := exec.CommandContext(ctx, encode.DefaultFFmpegPath,
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "yuv420p",
		"-video_size", strconv.Itoa(cfg.Width)+"x"+strconv.Itoa(cfg.Height),
		"-framerate", strconv.Itoa(cfg.FPS), "-i", "pipe:0",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", out)
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
	for i := range frames.n {
		if _, werr = stdin.Write(frames.frame(i)); werr != nil {
			break
		}
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
