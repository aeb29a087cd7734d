//go:build whirl_render && unix

package encode_test

// docs/PERFORMANCE.md, "GOP and segments": segment length and parallelism of the
// segmented encode, render included, against plain ffmpeg on the same
// frames read from a file, all in one interleaved run:
//
//	WHIRL_MEASURE=1 go test -tags whirl_render -run TestMeasureSegments -v -timeout 30m ./internal/encode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/render"
)

func TestMeasureSegments(t *testing.T) {
	if os.Getenv("WHIRL_MEASURE") == "" {
		t.Skip("set WHIRL_MEASURE=1")
	}
	cv, err := curve.Generate(curve.Params{Seed: 1, Wheels: 12})
	if err != nil {
		t.Fatal(err)
	}
	ro := render.Options{Width: mW, Height: mH, Frames: mFrames}
	ctx := context.Background()
	c := clip{w: mW, h: mH, fps: mFPS, n: mFrames}
	if err := render.Frames(ctx, cv, ro, 2, func(_ int, yuv []byte) error {
		c.data = append(c.data, yuv...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.rawPath = filepath.Join(t.TempDir(), "render.yuv")
	if err := os.WriteFile(c.rawPath, c.data, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := reference(t, c)
	var rows []*row
	get := func(name string) *row {
		for _, r := range rows {
			if r.name == name {
				return r
			}
		}
		r := &row{name: name}
		rows = append(rows, r)
		return r
	}
	source := func(ctx context.Context, s encode.Span, _ int, write func([]byte) error) error {
		return render.FrameRange(ctx, cv, ro, s.First, s.Count, 1, func(_ int, yuv []byte) error { return write(yuv) })
	}
	for round := range 3 {
		t.Logf("round %d", round+1)
		for _, gop := range []int{120, 150} {
			r := get(fmt.Sprintf("plain ffmpeg, GOP %d, x264 default threads, frames from a file", gop))
			wall, n := plainFromFile(t, c, gop)
			r.walls, r.bytes = append(r.walls, wall), n
			for _, p := range []int{1, 2, 3} {
				o := opts("", 0)
				o.GOP = gop
				plan, err := o.Plan(mFrames)
				if err != nil {
					t.Fatal(err)
				}
				var m timing
				m.start()
				if _, err := encode.EncodeSpans(ctx, encode.SpanConfig{Options: o, Budget: encode.NewBudget(p)}, source, m.sink); err != nil {
					t.Fatal(err)
				}
				m.add(get(fmt.Sprintf("segmented, render+encode, GOP %d: %d segments, %d encoders", gop, len(plan), p)))
			}
		}
		o := opts("", 0)
		o.Threads = 2
		var m timing
		m.start()
		e, err := encode.Start(ctx, o, m.sink)
		if err != nil {
			t.Fatal(err)
		}
		if err := render.Frames(ctx, cv, ro, 2, func(_ int, yuv []byte) error { return e.WriteFrame(yuv) }); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		m.add(get("one ffmpeg, threads 2, render+encode (before segments)"))
	}
	var out strings.Builder
	fmt.Fprintf(&out, "reference medium CRF 23: %d bytes\n\n| pipeline | wall s (median; min–max of 3) | first fragment ms | bytes | × ref |\n|---|---|---|---|---|\n", len(ref))
	for _, r := range rows {
		first := "–"
		if len(r.first) > 0 {
			first = ms(median(r.first))
		}
		fmt.Fprintf(&out, "| %s | %.2f (%.2f–%.2f) | %s | %d | %.3f |\n", r.name, median(r.walls).Seconds(), slices.Min(r.walls).Seconds(), slices.Max(r.walls).Seconds(), first, r.bytes, float64(r.bytes)/float64(len(ref)))
	}
	t.Log("\n" + out.String())
}

// row is one pipeline's figures over the rounds.
type row struct {
	name         string
	walls, first []time.Duration
	bytes        int
}

// timing is one encode's sink: when it started, its first fragment, its
// size.
type timing struct {
	t0    time.Time
	first time.Duration
	size  int
}

func (m *timing) start() { m.t0 = time.Now() }

func (m *timing) sink(s fmp4.Segment) error {
	if !s.Init && m.first == 0 {
		m.first = time.Since(m.t0)
	}
	m.size += len(s.Data)
	return nil
}

// add records the finished encode in r.
func (m *timing) add(r *row) {
	r.walls, r.first, r.bytes = append(r.walls, time.Since(m.t0)), append(r.first, m.first), m.size
}

// plainFromFile times plain ffmpeg (veryfast CRF 23, the given GOP, x264's
// default threading) on c's frames read from its raw file, fragmented MP4
// to a file.
func plainFromFile(t *testing.T, c clip, gop int) (time.Duration, int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "plain.mp4")
	t0 := time.Now()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", fmt.Sprintf("%dx%d", c.w, c.h),
		"-framerate", strconv.Itoa(c.fps), "-i", c.rawPath,
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", strconv.Itoa(gop), "-sc_threshold", "0",
		"-movflags", "empty_moov+default_base_moof+frag_keyframe", "-y", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plain ffmpeg: %v: %s", err, b)
	}
	wall := time.Since(t0)
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	return wall, int(st.Size())
}
