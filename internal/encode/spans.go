package encode

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/whirl-dev/whirl/internal/fmp4"
)

// FrameSource draws the frames of span, in order, with workers goroutines
// (the span's share of SpanConfig.Workers), and passes each to write
// (planar I420, i420.Size(Width, Height) bytes; the slice need not outlive
// the call). It returns write's first error, or its own.
type FrameSource func(ctx context.Context, span Span, workers int, write func(yuv []byte) error) error

// FrameWriter is one span's encoder as EncodeSpans drives it; an *Encoder
// is one.
type FrameWriter interface {
	WriteFrame(yuv []byte) error
	Close() error
}

// StartFunc starts one span's encoder, as Start does.
type StartFunc func(ctx context.Context, o Options, sink func(fmp4.Segment) error) (FrameWriter, error)

// ErrPanic is wrapped by the error of a span whose frame source or encoder
// panicked: the panic fails the encode, not the process.
var ErrPanic = errors.New("encode: panic")

// SpanConfig configures EncodeSpans.
type SpanConfig struct {
	// Options for every span's encoder; Width, Height, FPS and Frames
	// (the whole video's) are required. Threads 0 means SpanThreads.
	Options Options
	// Start starts a span's encoder; nil means the package's Start.
	Start StartFunc
	// Budget bounds encoders across the process; nil means one at a time.
	Budget *Budget
	// Workers is the drawing goroutines of the whole video (at least 1),
	// shared out among the spans that may run at once (SpanWorkers).
	Workers int
	// SpoolMemory bounds the bytes of each waiting span's output held in
	// memory (0: DefaultSpoolMemory); the rest goes to a temporary file in
	// SpoolDir ("" = the system's).
	SpoolMemory int
	SpoolDir    string
}

// SpanStats describe a finished (or failed) planned encode.
type SpanStats struct {
	Spans       int           // in the plan
	MaxEncoders int           // most span encoders running at once
	Spilled     int64         // bytes of waiting output written to disk
	Drawing     time.Duration // summed over spans: time not spent in WriteFrame
	Encoding    time.Duration // summed over spans: time blocked in WriteFrame and Close
}

// SpanWorkers is each span's share of a video's workers drawing goroutines
// when spans of its plan may run at once, budget allowing: workers split
// evenly among them, but at least minSpanWorkers each (or workers, if
// fewer). The video's spans then draw with at most max(workers,
// minSpanWorkers×running spans) goroutines together.
func SpanWorkers(workers, spans int, budget *Budget) int {
	workers = max(workers, 1)
	return max(min(minSpanWorkers, workers), workers/concurrentSpans(spans, budget))
}

// minSpanWorkers is the fewest drawing goroutines a span gets unless the
// video has fewer: five 720p renders at once on 2 CPUs with a budget of 2
// encoders, one worker per span, made 35% fewer frames a second than with
// two (the renderer's stages then take turns instead of overlapping, and
// its ffmpeg waits for frames); two per span matched the single-process
// figures.
const minSpanWorkers = 2

// concurrentSpans is how many of a plan's spans may run at once.
func concurrentSpans(spans int, budget *Budget) int {
	if budget == nil {
		return 1
	}
	return max(1, min(spans, budget.Size()))
}

// EncodeSpans encodes a video as the spans of Options.Plan, each from its
// own renderer (frames) and its own ffmpeg, as many at once as the budget
// allows, and hands the stitched stream (see fmp4.Stitcher) to sink in
// order: span 0 starts first and streams as it is encoded; later spans'
// output waits, bounded in memory, until their turn. The bytes do not
// depend on how many spans ran at once.
//
// It returns when every span has been delivered, or on the first error,
// after stopping every encoder it started: no ffmpeg and no goroutine of it
// outlives the call. Cancelling ctx stops them all at once.
func EncodeSpans(ctx context.Context, cfg SpanConfig, frames FrameSource, sink func(fmp4.Segment) error) (SpanStats, error) {
	o := cfg.Options.spanned()
	spans, err := o.Plan(o.Frames)
	if err != nil {
		return SpanStats{}, err
	}
	if len(spans) == 0 {
		return SpanStats{}, errors.New("encode: a planned encode needs Options.Frames")
	}
	if cfg.Start == nil {
		cfg.Start = func(ctx context.Context, o Options, sink func(fmp4.Segment) error) (FrameWriter, error) {
			return Start(ctx, o, sink)
		}
	}
	if cfg.Budget == nil {
		cfg.Budget = NewBudget(1)
	}
	if cfg.SpoolMemory <= 0 {
		cfg.SpoolMemory = DefaultSpoolMemory
	}
	r := &spanRun{
		cfg: cfg, o: o, spans: spans, frames: frames, stitcher: fmp4.NewStitcher(sink),
		workers: SpanWorkers(cfg.Workers, len(spans), cfg.Budget),
	}
	return r.run(ctx)
}

// spanRun is one EncodeSpans call.
type spanRun struct {
	cfg      SpanConfig
	o        Options
	spans    []Span
	frames   FrameSource
	stitcher *fmp4.Stitcher
	workers  int // each span's drawing goroutines

	ctx    context.Context
	cancel context.CancelCauseFunc
	group  errgroup.Group // the launcher and the spans' goroutines
	parts  []*spanPart
	// headStart is closed once span 0 has sent its first fragment, or
	// ended: only then do other spans start, so they do not compete with
	// it for a CPU on the way to the first fragment.
	headStart     chan struct{}
	headStartOnce sync.Once

	running, maxRunning atomic.Int32
	// The video's first encoder from the budget, held from its first span
	// to its last and passed from each span to the next, so a video once
	// started never waits in line again and never stalls mid-stream;
	// encoders beyond it are borrowed per span.
	releaseBase       func()      // set by launch before the first span starts
	baseFree          atomic.Bool // no span is using the base encoder
	drawing, encoding atomic.Int64
}

// spanPart is one span's state between its encoder and the stitcher.
type spanPart struct {
	spool   *spool
	started chan struct{} // closed once the span runs (or never will)
	done    chan error    // receives the span's result once
}

func (r *spanRun) run(parent context.Context) (SpanStats, error) {
	r.ctx, r.cancel = context.WithCancelCause(parent)
	defer r.cancel(nil)
	r.headStart = make(chan struct{})
	r.parts = make([]*spanPart, len(r.spans))
	for i := range r.parts {
		r.parts[i] = &spanPart{
			spool:   newSpool(r.cfg.SpoolDir, r.cfg.SpoolMemory),
			started: make(chan struct{}),
			done:    make(chan error, 1),
		}
	}
	// the launcher, and at most as many spans as may run at once
	r.group.SetLimit(1 + concurrentSpans(len(r.spans), r.cfg.Budget))
	finished := make(chan struct{}, len(r.spans))
	r.group.Go(func() error { r.launch(finished); return nil })
	err := r.deliver()
	if err != nil {
		r.cancel(err)
	}
	_ = r.group.Wait() // the spans report through their parts
	if r.releaseBase != nil {
		r.releaseBase()
	}
	stats := SpanStats{
		Spans:       len(r.spans),
		MaxEncoders: int(r.maxRunning.Load()),
		Drawing:     time.Duration(r.drawing.Load()),
		Encoding:    time.Duration(r.encoding.Load()),
	}
	for _, p := range r.parts {
		stats.Spilled += p.spool.Spilled()
		p.spool.close()
	}
	if err != nil && parent.Err() != nil {
		err = fmt.Errorf("encode: %w", context.Cause(parent))
	}
	return stats, err
}

// deliver hands the spans to the stitcher in order, each as soon as the
// one before it is complete, and returns the first error.
func (r *spanRun) deliver() error {
	for i, p := range r.parts {
		select {
		case <-p.started:
		case <-r.ctx.Done():
			return context.Cause(r.ctx)
		}
		if err := p.spool.release(r.stitcher.Add); err != nil {
			return err
		}
		if err := <-p.done; err != nil {
			if cause := context.Cause(r.ctx); cause != nil {
				// another span failed first and stopped this one
				return cause
			}
			return fmt.Errorf("encode: span %d (frames %d–%d): %w", i, r.spans[i].First, r.spans[i].First+r.spans[i].Count-1, err)
		}
		if err := r.stitcher.EndSpan(); err != nil {
			return err
		}
	}
	return nil
}

// launch starts the spans in plan order, each once it holds an encoder:
// the video's base encoder, which it waits for in line, or one more from
// the budget while some are free. finished receives whenever one of this
// video's spans ends, which may free an encoder for the next.
func (r *spanRun) launch(finished chan struct{}) {
	base, err := r.cfg.Budget.acquire(r.ctx)
	if err != nil {
		return // ctx is done: deliver sees it
	}
	r.releaseBase = base
	r.baseFree.Store(true)
	for i, span := range r.spans {
		if i == 1 {
			select {
			case <-r.headStart:
			case <-r.ctx.Done():
				return
			}
		}
		release, err := r.take(finished)
		if err != nil {
			return // ctx is done: deliver sees it
		}
		r.running.Add(1)
		r.maxRunning.Store(max(r.maxRunning.Load(), r.running.Load()))
		p := r.parts[i]
		close(p.started)
		r.group.Go(func() error {
			err := r.encode(span, r.sink(i, p))
			if i == 0 {
				r.startOthers()
			}
			r.running.Add(-1)
			release()
			if err != nil {
				r.cancel(fmt.Errorf("encode: span %d: %w", i, err))
			}
			p.done <- err
			finished <- struct{}{}
			return nil
		})
	}
}

// sink is span i's encoder's sink: its spool, and for span 0 the signal
// that lets the others start once its first fragment is out.
func (r *spanRun) sink(i int, p *spanPart) func(fmp4.Segment) error {
	if i != 0 {
		return p.spool.put
	}
	return func(seg fmp4.Segment) error {
		if !seg.Init {
			r.startOthers()
		}
		return p.spool.put(seg)
	}
}

func (r *spanRun) startOthers() {
	r.headStartOnce.Do(func() { close(r.headStart) })
}

// take gets an encoder for the next span: the base one if it is free, else
// one from the budget if one is free there, else it waits for one of the
// video's spans to end.
func (r *spanRun) take(finished chan struct{}) (release func(), err error) {
	for {
		if r.baseFree.CompareAndSwap(true, false) {
			return func() { r.baseFree.Store(true) }, nil
		}
		if release, ok := r.cfg.Budget.tryAcquire(); ok {
			return release, nil
		}
		select {
		case <-finished:
		case <-r.ctx.Done():
			return nil, r.ctx.Err()
		}
	}
}

// encode runs one span: its own renderer into its own encoder. A panic of
// the encoder's start, the frame source or the encoder fails the span, not
// the process: the goroutine is the package's own, out of any caller's
// recover, so the recover is in place before anything of theirs runs.
func (r *spanRun) encode(span Span, sink func(fmp4.Segment) error) (err error) {
	var enc FrameWriter
	closed := false
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack())
			r.cancel(err) // kills this encoder too, before Close waits for it
			if enc != nil && !closed {
				_ = enc.Close()
			}
		}
	}()
	o := r.o
	o.Frames = span.Count
	if enc, err = r.cfg.Start(r.ctx, o, sink); err != nil {
		return err
	}
	start := time.Now()
	var writing time.Duration
	err = r.frames(r.ctx, span, r.workers, func(yuv []byte) error {
		t := time.Now()
		defer func() { writing += time.Since(t) }()
		return enc.WriteFrame(yuv)
	})
	t := time.Now()
	closed = true
	closeErr := enc.Close()
	writing += time.Since(t)
	r.encoding.Add(int64(writing))
	r.drawing.Add(int64(time.Since(start) - writing))
	if err != nil {
		// Close's error says why WriteFrame failed, if it did
		return errors.Join(err, closeErr)
	}
	return closeErr
}
