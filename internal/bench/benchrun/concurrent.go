package benchrun

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/render"
)

// concurrentRenders is how many renders the concurrency rounds run at once.
const concurrentRenders = 5

// ConcurrentRuns compare five renders at once (five curves, seeds Seed to
// Seed+4), drawn and encoded in this process without gRPC, the way whirl
// encoded before segments (one ffmpeg per render, libx264 threads 2, fed by
// render.Frames) and the way it does now (each render's segments under one
// process-wide budget of NumCPU encoders, as the server runs them). Both at
// the server's ffmpeg niceness. Figures are aggregate frames/s: five
// renders' frames over the time until the last one ends.
type ConcurrentRuns struct {
	Renders int       `json:"renders"`
	Single  []float64 `json:"single_process_fps"`
	Segment []float64 `json:"segmented_fps"`
	// Medians over the rounds, and the median over rounds of the
	// segmented/single-process ratio within each round.
	MedianSingle  float64 `json:"median_single_process_fps"`
	MedianSegment float64 `json:"median_segmented_fps"`
	PairedRatio   float64 `json:"median_paired_ratio"`
}

// concurrentRound runs both pipelines once, single process first.
func (b *bench) concurrentRound(ctx context.Context, i int) error {
	curves := make([]curve.Curve, concurrentRenders)
	for j := range curves {
		c, err := curve.Generate(curve.Params{Seed: b.cfg.Seed + uint64(j), Wheels: b.cfg.Wheels})
		if err != nil {
			return err
		}
		curves[j] = c
	}
	r := &b.rep.Concurrent
	r.Renders = concurrentRenders
	for _, p := range []struct {
		runs *[]float64
		one  func(ctx context.Context, c curve.Curve, budget *encode.Budget) error
	}{{&r.Single, b.singleProcess}, {&r.Segment, b.segmented}} {
		budget := encode.NewBudget(runtime.NumCPU())
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, len(curves))
		for j, c := range curves {
			wg.Go(func() { errs[j] = p.one(ctx, c, budget) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return fmt.Errorf("concurrent round %d: %w", i+1, err)
			}
		}
		*p.runs = append(*p.runs, float64(len(curves)*b.cfg.Frames)/time.Since(start).Seconds())
	}
	b.cfg.logf("  five renders at once #%d: %.1f frames/s single-process, %.1f segmented", i+1, r.Single[i], r.Segment[i])
	return nil
}

// videoOptions are the renderer's and the encoder's settings for one of the
// bench's videos, as the server has them.
func (b *bench) videoOptions() (render.Options, encode.Options) {
	ro := render.Options{Width: b.cfg.Width, Height: b.cfg.Height, Frames: b.cfg.Frames, Style: render.Wheels}
	eo := encode.Options{Width: b.cfg.Width, Height: b.cfg.Height, FPS: b.cfg.FPS, Frames: b.cfg.Frames, Nice: encode.DefaultNice}
	return ro, eo
}

// singleProcess is one render the way whirl encoded before segments.
func (b *bench) singleProcess(ctx context.Context, c curve.Curve, _ *encode.Budget) error {
	ro, eo := b.videoOptions()
	eo.Threads = 2
	enc, err := encode.Start(ctx, eo, func(encode.Segment) error { return nil })
	if err != nil {
		return err
	}
	err = render.Frames(ctx, c, ro, b.rep.Setup.RenderWorkers, func(_ int, yuv []byte) error { return enc.WriteFrame(yuv) })
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	return err
}

// segmented is one render the way the server encodes it now.
func (b *bench) segmented(ctx context.Context, c curve.Curve, budget *encode.Budget) error {
	ro, eo := b.videoOptions()
	_, err := encode.EncodeSegments(ctx, encode.Segments{Options: eo, Budget: budget},
		func(ctx context.Context, s encode.Span, write func([]byte) error) error {
			return render.FrameRange(ctx, c, ro, s.First, s.Count, b.rep.Setup.RenderWorkers, func(_ int, yuv []byte) error { return write(yuv) })
		}, func(encode.Segment) error { return nil })
	return err
}

func (c *ConcurrentRuns) summarize() {
	c.MedianSingle, c.MedianSegment = median(c.Single), median(c.Segment)
	var ratios []float64
	for i := range min(len(c.Single), len(c.Segment)) {
		ratios = append(ratios, c.Segment[i]/c.Single[i])
	}
	c.PairedRatio = median(ratios)
}

// judgeConcurrent adds the concurrency target: segmenting must not lower
// the throughput of a loaded server.
func (r *Report) judgeConcurrent() {
	c := r.Concurrent
	if len(c.Segment) == 0 {
		return
	}
	t := Target{
		Name: "five renders at once, aggregate frames/s, segmented / single-process (median of per-round ratios)", Want: "≥ 1",
		Got: c.PairedRatio, Limit: 1, Ratio: c.PairedRatio, Status: "MISS",
		Note: fmt.Sprintf("medians %.1f vs %.1f frames/s", c.MedianSegment, c.MedianSingle),
	}
	if c.PairedRatio >= 1 {
		t.Status = "PASS"
	}
	r.Targets = append(r.Targets, t)
}

func (r *Report) writeConcurrent(w io.Writer) {
	c := r.Concurrent
	if len(c.Segment) == 0 {
		return
	}
	fmt.Fprintf(w, "\nfive renders at once (in process, no gRPC), aggregate frames/s per round:\n  single ffmpeg per render (before segments): %v\n  segmented, one budget of %d encoders:        %v\n",
		rounded(c.Single), r.Setup.CPUs, rounded(c.Segment))
}

func rounded(xs []float64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.1f", x)
	}
	return out
}
