package encode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
)

func TestPlan(t *testing.T) {
	o := encode.Options{Width: 64, Height: 64, FPS: 30} // GOP 150
	small := o
	small.GOP = 4
	longest := make([]encode.Span, 24) // 3600 frames, render.MaxFrames
	for i := range longest {
		longest[i] = encode.Span{First: 150 * i, Count: 150}
	}
	for _, tc := range []struct {
		o      encode.Options
		frames int
		want   []encode.Span
	}{
		{o, 0, []encode.Span{}},
		{o, 1, []encode.Span{{0, 1}}},
		{o, 149, []encode.Span{{0, 149}}},
		{o, 150, []encode.Span{{0, 150}}},
		{o, 151, []encode.Span{{0, 76}, {76, 75}}},
		{o, 200, []encode.Span{{0, 100}, {100, 100}}},
		{o, 300, []encode.Span{{0, 150}, {150, 150}}},
		{o, 301, []encode.Span{{0, 101}, {101, 100}, {201, 100}}},
		{o, 3600, longest},
		// spans of at least MinTail frames, even past a short GOP
		{small, 7, []encode.Span{{0, 7}}},
		{small, 15, []encode.Span{{0, 15}}},
		{small, 16, []encode.Span{{0, 8}, {8, 8}}},
		{small, 17, []encode.Span{{0, 9}, {9, 8}}},
	} {
		got, err := tc.o.Plan(tc.frames)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("GOP %d: Plan(%d) = %v, want %v", tc.o.GOP, tc.frames, got, tc.want)
		}
	}
	if _, err := o.Plan(-1); err == nil {
		t.Error("Plan(-1) accepted")
	}
	if _, err := (encode.Options{}).Plan(10); err == nil {
		t.Error("Plan without a size and rate accepted")
	}
}

// TestIdentity: every setting that changes the bytes changes the identity;
// the ones that do not, do not.
func TestIdentity(t *testing.T) {
	base := encode.Options{Width: 64, Height: 48, FPS: 24, Frames: 50}
	id := func(o encode.Options) string {
		t.Helper()
		s, err := o.Identity()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := id(base)
	same := base
	same.FFmpegPath, same.Nice, same.Threads = "/usr/bin/ffmpeg", 19, encode.SpanThreads
	if got := id(same); got != want {
		t.Errorf("path, niceness and default threads changed the identity:\n%s\n%s", got, want)
	}
	for name, change := range map[string]func(*encode.Options){
		"preset":   func(o *encode.Options) { o.Preset = "medium" },
		"crf":      func(o *encode.Options) { o.CRF = 30 },
		"gop":      func(o *encode.Options) { o.GOP = 12 },
		"fragment": func(o *encode.Options) { o.FragmentDuration = 200e6 },
		"threads":  func(o *encode.Options) { o.Threads = 2 },
		"size":     func(o *encode.Options) { o.Width = 66 },
		"fps":      func(o *encode.Options) { o.FPS = 25 },
		"frames":   func(o *encode.Options) { o.Frames = 51 },
	} {
		o := base
		change(&o)
		if id(o) == want {
			t.Errorf("changing %s left the identity %q", name, want)
		}
	}
	if _, err := (encode.Options{}).Identity(); err == nil {
		t.Error("identity of invalid options")
	}
}

// sliceSource serves frames from memory.
func sliceSource(fs [][]byte) encode.FrameSource {
	return func(ctx context.Context, s encode.Span, _ int, write func([]byte) error) error {
		for _, f := range fs[s.First : s.First+s.Count] {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := write(f); err != nil {
				return err
			}
		}
		return nil
	}
}

// collect is a sink gathering a stream.
type collect struct {
	mu   sync.Mutex
	segs []fmp4.Segment
	data []byte
}

func (c *collect) sink(s fmp4.Segment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.segs = append(c.segs, s)
	c.data = append(c.data, s.Data...)
	return nil
}

func planned(t *testing.T, cfg encode.SpanConfig, fs [][]byte) ([]byte, encode.SpanStats) {
	t.Helper()
	var c collect
	st, err := encode.EncodeSpans(context.Background(), cfg, sliceSource(fs), c.sink)
	if err != nil {
		t.Fatal(err)
	}
	return c.data, st
}

// TestEncodeSpans: a video encoded in spans plays as one file (every frame,
// timestamps one frame apart, the right duration) whether it ends on, just
// after or just before a span boundary, or has one frame; its bytes are
// the same whatever the parallelism and when waiting output spills to disk.
func TestEncodeSpans(t *testing.T) {
	const w, h, fps, gop = 96, 64, 24, 12
	all := frames(t, w, h, 3*gop+1)
	for _, n := range []int{1, gop - 1, gop, gop + 1, gop + encode.MinTail, 3*gop - 1, 3 * gop, 3*gop + 1} {
		t.Run(fmt.Sprintf("frames=%d", n), func(t *testing.T) {
			fs := all[:n]
			o := encode.Options{Width: w, Height: h, FPS: fps, GOP: gop, Frames: n}
			want, st := planned(t, encode.SpanConfig{Options: o}, fs)
			plan, _ := o.Plan(n)
			if st.Spans != len(plan) || st.MaxEncoders != 1 {
				t.Errorf("one at a time: %+v", st)
			}
			info := mp4check.Probe(t, want, mp4check.Expect{Width: w, Height: h, FPS: fps, Frames: n, Timestamps: true})
			if info.Fragments == 0 {
				t.Error("no fragments")
			}
			var got []byte
			for _, p := range []int{2, 4} {
				got, st = planned(t, encode.SpanConfig{Options: o, Budget: encode.NewBudget(p)}, fs)
				if !bytes.Equal(got, want) {
					t.Errorf("parallelism %d: %d bytes differ from one at a time (%d)", p, len(got), len(want))
				}
				if st.MaxEncoders > p {
					t.Errorf("parallelism %d: %d encoders at once", p, st.MaxEncoders)
				}
			}
			got, _ = planned(t, encode.SpanConfig{Options: o, Budget: encode.NewBudget(4), SpoolMemory: 1, SpoolDir: t.TempDir()}, fs)
			if !bytes.Equal(got, want) {
				t.Errorf("spilling: %d bytes differ from one at a time (%d)", len(got), len(want))
			}
		})
	}
}

// TestEncodeSpansMismatch: a span whose encoder ran with other
// settings (another SPS) fails the encode loudly, and stops the rest.
func TestEncodeSpansMismatch(t *testing.T) {
	const w, h, gop = 64, 64, encode.MinTail
	fs := frames(t, w, h, 3*gop)
	o := encode.Options{Width: w, Height: h, FPS: 24, GOP: gop, Frames: len(fs)}
	var mu sync.Mutex
	started := 0
	start := func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (encode.FrameWriter, error) {
		mu.Lock()
		if started++; started == 2 {
			o.Preset = "medium" // more reference frames: another SPS
		}
		mu.Unlock()
		return encode.Start(ctx, o, sink)
	}
	var c collect
	_, err := encode.EncodeSpans(context.Background(), encode.SpanConfig{Options: o, Start: start}, sliceSource(fs), c.sink)
	if !errors.Is(err, fmp4.ErrStitch) {
		t.Fatalf("err = %v, want ErrStitch", err)
	}
	t.Log(err)
}

// pidStarter starts real encoders and records their ffmpeg pids. The
// encoder given the frame killAt (that very slice) kills its ffmpeg first.
type pidStarter struct {
	killAt []byte
	mu     sync.Mutex
	all    []int
}

func (p *pidStarter) start(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (encode.FrameWriter, error) {
	e, err := encode.Start(ctx, o, sink)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, e.PID())
	return killer{e, p.killAt}, nil
}

type killer struct {
	*encode.Encoder
	at []byte
}

func (k killer) WriteFrame(yuv []byte) error {
	if k.at != nil && &yuv[0] == &k.at[0] {
		if err := syscall.Kill(k.PID(), syscall.SIGKILL); err != nil {
			return err
		}
	}
	return k.Encoder.WriteFrame(yuv)
}

func (p *pidStarter) pidList() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.all)
}

// TestEncodeSpansCancel: cancelling while every span's encoder runs
// stops them all at once; no ffmpeg and no goroutine is left.
func TestEncodeSpansCancel(t *testing.T) {
	// Spans start once span 0 has sent a fragment: it must be given
	// more frames than x264 holds back (16) for that.
	const w, h, gop, segs = 160, 120, 40, 3
	fs := frames(t, w, h, gop*segs)
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		p       pidStarter
		running sync.WaitGroup
	)
	running.Add(segs)
	// Each span writes 3/4 of its frames, then waits for cancellation.
	src := func(ctx context.Context, s encode.Span, _ int, write func([]byte) error) error {
		for _, f := range fs[s.First : s.First+s.Count*3/4] {
			if err := write(f); err != nil {
				return err
			}
		}
		running.Done()
		<-ctx.Done()
		return ctx.Err()
	}
	o := encode.Options{Width: w, Height: h, FPS: 30, GOP: gop, Frames: len(fs)}
	done := make(chan error, 1)
	go func() {
		var c collect
		_, err := encode.EncodeSpans(ctx, encode.SpanConfig{Options: o, Start: p.start, Budget: encode.NewBudget(segs)}, src, c.sink)
		done <- err
	}()
	running.Wait()
	pids := p.pidList()
	if len(pids) != segs {
		t.Fatalf("%d encoders running, want %d", len(pids), segs)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	for _, pid := range pids { // reaped before EncodeSpans returned
		if !gone(pid) {
			t.Errorf("ffmpeg %d outlived the cancelled encode", pid)
		}
	}
	noLeaks(t, ignore)
}

// TestEncodeSpansKilled: ffmpeg killed in span 2 fails the whole
// encode with an error naming it, after every other encoder has stopped.
func TestEncodeSpansKilled(t *testing.T) {
	const w, h, gop, segs = 160, 120, 10, 4
	fs := frames(t, w, h, gop*segs)
	o := encode.Options{Width: w, Height: h, FPS: 30, GOP: gop, Frames: len(fs)}
	for _, parallelism := range []int{1, 4} {
		t.Run(fmt.Sprintf("parallelism=%d", parallelism), func(t *testing.T) {
			p := pidStarter{killAt: fs[2*gop+3]}
			var c collect
			_, err := encode.EncodeSpans(context.Background(), encode.SpanConfig{Options: o, Start: p.start, Budget: encode.NewBudget(parallelism)}, sliceSource(fs), c.sink)
			if err == nil || !strings.Contains(err.Error(), "span 2") || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("err = %v, want span 2's ffmpeg killed", err)
			}
			for _, pid := range p.pidList() {
				if !gone(pid) {
					t.Errorf("ffmpeg %d outlived the failed encode", pid)
				}
			}
		})
	}
}

// countingWriter counts the frames written to an encoder.
type countingWriter struct {
	encode.FrameWriter
	n *atomic.Int64
}

func (c countingWriter) WriteFrame(yuv []byte) error {
	c.n.Add(1)
	return c.FrameWriter.WriteFrame(yuv)
}

// TestEncodeSpansHeadStart: with encoders to spare, the other spans
// start only once span 0 has sent a fragment, which x264 does after 15
// frames in, so they do not compete with it on its way to the client.
func TestEncodeSpansHeadStart(t *testing.T) {
	const w, h, gop = 96, 64, 40
	fs := frames(t, w, h, 3*gop)
	o := encode.Options{Width: w, Height: h, FPS: 30, GOP: gop, Frames: len(fs)}
	var (
		mu      sync.Mutex
		first   atomic.Int64 // frames written to span 0's encoder
		started []int64      // first's count when each encoder started
	)
	start := func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (encode.FrameWriter, error) {
		e, err := encode.Start(ctx, o, sink)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		started = append(started, first.Load())
		if len(started) == 1 {
			return countingWriter{e, &first}, nil
		}
		return e, nil
	}
	var c collect
	if _, err := encode.EncodeSpans(context.Background(), encode.SpanConfig{Options: o, Start: start, Budget: encode.NewBudget(4)}, sliceSource(fs), c.sink); err != nil {
		t.Fatal(err)
	}
	if len(started) != 3 {
		t.Fatalf("%d encoders started, want 3", len(started))
	}
	for i, n := range started[1:] {
		if n < 15 {
			t.Errorf("encoder %d started after %d frames of span 0, before its first fragment could exist", i+2, n)
		}
	}
	t.Logf("frames into span 0 when each encoder started: %v", started)
}
