package encode_test

import (
	"context"
	"errors"
	iofs "io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
)

// TestEncodeSpansStartPanic: an encoder whose start panics fails that
// encode with ErrPanic, after stopping the encoders already started; the
// process goes on. Before, the recover was registered only once the start
// had returned, and the panic ended the process.
func TestEncodeSpansStartPanic(t *testing.T) {
	const w, h, gop, spans = 64, 64, 10, 3
	fs := frames(t, w, h, gop*spans)
	o := encode.Options{Width: w, Height: h, FPS: 30, GOP: gop, Frames: len(fs)}
	for _, panicAt := range []int{1, 2} {
		t.Run(strings.Repeat("later ", panicAt-1)+"start", func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			var p pidStarter
			var mu sync.Mutex
			calls := 0
			start := func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (encode.FrameWriter, error) {
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				if n == panicAt {
					panic("the encoder's start broke")
				}
				return p.start(ctx, o, sink)
			}
			var c collect
			_, err := encode.EncodeSpans(context.Background(), encode.SpanConfig{Options: o, Start: start, Budget: encode.NewBudget(1)}, sliceSource(fs), c.sink)
			if !errors.Is(err, encode.ErrPanic) || !strings.Contains(err.Error(), "the encoder's start broke") {
				t.Fatalf("err = %v, want ErrPanic with the panic's value", err)
			}
			for _, pid := range p.pidList() {
				if !gone(pid) {
					t.Errorf("ffmpeg %d outlived the failed encode", pid)
				}
			}
			noLeaks(t, ignore)
		})
	}
}

// TestSpanWorkers: a video's drawing workers are shared out among the
// spans that may run at once, at least one each.
func TestSpanWorkers(t *testing.T) {
	for _, tc := range []struct{ workers, spans, budget, want int }{
		{8, 2, 8, 4},   // a 10 s video on 8 CPUs: two spans of 4
		{8, 12, 8, 2},  // a long video: eight spans at once, two each at least
		{16, 12, 8, 2}, //
		{64, 12, 64, 5},
		{8, 12, 2, 4},
		{2, 2, 2, 2}, // 2 CPUs
		{1, 3, 3, 1}, // asked for one: one
		{0, 1, 4, 1},
		{16, 1, 4, 16}, // one span takes them all
	} {
		if got := encode.SpanWorkers(tc.workers, tc.spans, encode.NewBudget(tc.budget)); got != tc.want {
			t.Errorf("SpanWorkers(%d workers, %d spans, budget %d) = %d, want %d", tc.workers, tc.spans, tc.budget, got, tc.want)
		}
	}
}

// TestEncodeSpansWorkers: the frame source of every span is given the
// span's share of SpanConfig.Workers, so the spans running at once never
// draw with more than the video's workers together. Before, every span was
// drawn with all of them.
func TestEncodeSpansWorkers(t *testing.T) {
	const w, h, gop, spans, workers = 64, 64, 10, 4, 8
	fs := frames(t, w, h, gop*spans)
	o := encode.Options{Width: w, Height: h, FPS: 30, GOP: gop, Frames: len(fs)}
	for _, budget := range []int{1, 2, 4} {
		var mu sync.Mutex
		running, most := 0, 0
		src := func(ctx context.Context, s encode.Span, n int, write func([]byte) error) error {
			mu.Lock()
			running += n
			most = max(most, running)
			mu.Unlock()
			defer func() { mu.Lock(); running -= n; mu.Unlock() }()
			return sliceSource(fs)(ctx, s, n, write)
		}
		var c collect
		st, err := encode.EncodeSpans(context.Background(), encode.SpanConfig{Options: o, Budget: encode.NewBudget(budget), Workers: workers}, src, c.sink)
		if err != nil {
			t.Fatal(err)
		}
		if most > workers {
			t.Errorf("budget %d: %d spans at once drew with %d workers together, the video has %d", budget, st.MaxEncoders, most, workers)
		}
	}
}

// TestEncodeSpansSpillFails: when a waiting span's output cannot be
// spilled to disk, the encode fails with that error and stops every
// encoder; nothing hangs.
func TestEncodeSpansSpillFails(t *testing.T) {
	const w, h, gop, spans = 160, 120, 40, 2
	fs := frames(t, w, h, gop*spans)
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var p pidStarter
	// Span 0 stops short of its end until the encode fails, so span 1's
	// output has to wait, and spill.
	src := func(ctx context.Context, s encode.Span, n int, write func([]byte) error) error {
		if s.First == 0 {
			if err := sliceSource(fs[:30])(ctx, encode.Span{Count: 30}, n, write); err != nil {
				return err
			}
			<-ctx.Done()
			return context.Cause(ctx)
		}
		return sliceSource(fs)(ctx, s, n, write)
	}
	o := encode.Options{Width: w, Height: h, FPS: 30, GOP: gop, Frames: len(fs)}
	var c collect
	_, err := encode.EncodeSpans(ctx, encode.SpanConfig{
		Options: o, Start: p.start, Budget: encode.NewBudget(spans),
		SpoolMemory: 1, SpoolDir: filepath.Join(t.TempDir(), "gone"),
	}, src, c.sink)
	if !errors.Is(err, iofs.ErrNotExist) || !strings.Contains(err.Error(), "spilling") {
		t.Fatalf("err = %v, want the spill's failure", err)
	}
	for _, pid := range p.pidList() {
		if !gone(pid) {
			t.Errorf("ffmpeg %d outlived the failed encode", pid)
		}
	}
	noLeaks(t, ignore)
}
