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
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/render"
)

// concurrentRenders is how many renders the concurrency rounds run at once.
const concurrentRenders = 5

// ConcurrentRuns compare five renders at once (five curves, seeds Seed to
// Seed+4), drawn and encoded in this process without gRPC, the way whirl
// encoded before segments (one ffmpeg per render, libx264 threads 2, fed by
// render.Frames) and the way it does now (each render's segments under one
// process-wide budget of GOMAXPROCS encoders and encode.SpareSize warm spare
// ffmpeg processes, as the server runs them). Both at the server's ffmpeg
// niceness. Figures are aggregate frames/s: five
// renders' frames over the time until the last one ends.
//
// On a machine shared with other work the wall-clock figure also measures
// how much CPU each way wins from the other tenants (five ffmpeg processes
// of two threads each against at most NumCPU single-threaded ones), so the
// CPU time per frame (this process plus ffmpeg) is reported beside it.
type ConcurrentRuns struct {
	Renders int       `json:"renders"`
	Single  []float64 `json:"single_process_fps"`
	Segment []float64 `json:"segmented_fps"`
	// CPU milliseconds per frame, per round.
	SingleCPU  []float64 `json:"single_process_cpu_ms_per_frame"`
	SegmentCPU []float64 `json:"segmented_cpu_ms_per_frame"`
	// Medians over the rounds, and the median over rounds of the
	// segmented/single-process ratio within each round.
	MedianSingle  float64 `json:"median_single_process_fps"`
	MedianSegment float64 `json:"median_segmented_fps"`
	PairedRatio   float64 `json:"median_paired_ratio"`
	// StartupBound is the ratio the extra ffmpeg start-ups of segmenting
	// alone allow (Budget.Segments−1 per render, Budget.StartupCPU each):
	// the single-process CPU per frame over itself plus those start-ups
	// spread over a render's frames.
	StartupBound float64 `json:"startup_bound_ratio"`
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
		runs, cpu *[]float64
		one       func(ctx context.Context, c curve.Curve, budget *encode.Budget) error
	}{{&r.Single, &r.SingleCPU, b.singleProcess}, {&r.Segment, &r.SegmentCPU, b.segmented}} {
		budget := encode.NewBudget(runtime.GOMAXPROCS(0))
		cpu0 := readCPU()
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
		frames := float64(len(curves) * b.cfg.Frames)
		*p.runs = append(*p.runs, frames/time.Since(start).Seconds())
		cpu1 := readCPU()
		*p.cpu = append(*p.cpu, 1000*(cpu1.self-cpu0.self+cpu1.children-cpu0.children)/frames)
	}
	b.cfg.logf("  five renders at once #%d: %.1f frames/s single-process, %.1f segmented; CPU %.2f vs %.2f ms/frame", i+1, r.Single[i], r.Segment[i], r.SingleCPU[i], r.SegmentCPU[i])
	return nil
}

// startSpare starts the warm ffmpeg processes the segmented rounds take, as
// the server keeps them.
func (b *bench) startSpare() {
	_, eo := b.videoOptions()
	eo.Threads = encode.SpanThreads
	b.spare = encode.NewSpare(eo, encode.SpareSize(runtime.GOMAXPROCS(0)))
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
	enc, err := encode.Start(ctx, eo, func(fmp4.Segment) error { return nil })
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
	start := func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (encode.FrameWriter, error) {
		return b.spare.Start(ctx, o, sink)
	}
	_, err := encode.EncodeSpans(ctx, encode.SpanConfig{Options: eo, Budget: budget, Start: start, Workers: b.rep.Setup.RenderWorkers},
		func(ctx context.Context, s encode.Span, workers int, write func([]byte) error) error {
			return render.FrameRange(ctx, c, ro, s.First, s.Count, workers, func(_ int, yuv []byte) error { return write(yuv) })
		}, func(fmp4.Segment) error { return nil })
	return err
}

// summarize takes the medians, and the start-up bound for videos of frames
// frames.
func (c *ConcurrentRuns) summarize(b Budget, frames int) {
	c.MedianSingle, c.MedianSegment = median(c.Single), median(c.Segment)
	var ratios []float64
	for i := range min(len(c.Single), len(c.Segment)) {
		ratios = append(ratios, c.Segment[i]/c.Single[i])
	}
	c.PairedRatio = median(ratios)
	if single := median(c.SingleCPU); single > 0 && frames > 0 {
		extra := float64(b.Segments-1) * b.StartupCPU * 1000 / float64(frames)
		c.StartupBound = single / (single + extra)
	}
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
		Note: fmt.Sprintf("medians %.1f vs %.1f frames/s; %d segments per render: %d ffmpeg start-up(s) more per render at %.3f CPU s each allow at most %.2f", c.MedianSegment, c.MedianSingle,
			r.Budget.Segments, r.Budget.Segments-1, r.Budget.StartupCPU, c.StartupBound),
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
	fmt.Fprintf(w, "\nfive renders at once (in process, no gRPC), per round: aggregate frames/s; CPU ms per frame (this process + ffmpeg)\n  single ffmpeg per render (before segments): %v; %v\n  segmented, one budget of %d encoders:        %v; %v\n",
		rounded(c.Single), rounded(c.SingleCPU), r.Setup.CPUs, rounded(c.Segment), rounded(c.SegmentCPU))
}

func rounded(xs []float64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%.1f", x)
	}
	return out
}
