package encode

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// FrameSource draws the frames of span, in order, and passes each to write
// (planar I420, i420.Size(Width, Height) bytes; the slice need not outlive
// the call). It returns write's first error, or its own.
type FrameSource func(ctx context.Context, span Span, write func(yuv []byte) error) error

// FrameWriter is one segment's encoder as EncodeSegments drives it; an
// *Encoder is one.
type FrameWriter interface {
	WriteFrame(yuv []byte) error
	Close() error
}

// StartFunc starts one segment's encoder, as Start does.
type StartFunc func(ctx context.Context, o Options, sink func(Segment) error) (FrameWriter, error)

// Segments configures EncodeSegments.
type Segments struct {
	// Options for every segment's encoder; Width, Height, FPS and Frames
	// (the whole video's) are required. Threads 0 means SegmentThreads.
	Options Options
	// Start starts a segment's encoder; nil means the package's Start.
	Start StartFunc
	// Budget bounds encoders across the process; nil means one at a time.
	Budget *Budget
	// SpoolMemory bounds the bytes of each waiting segment's output held
	// in memory (0: DefaultSpoolMemory); the rest goes to a temporary file
	// in SpoolDir ("" = the system's).
	SpoolMemory int
	SpoolDir    string
}

// SegmentStats describe a finished (or failed) segmented encode.
type SegmentStats struct {
	Segments    int           // in the plan
	MaxEncoders int           // most segment encoders running at once
	Spilled     int64         // bytes of waiting output written to disk
	Drawing     time.Duration // summed over segments: time not spent in WriteFrame
	Encoding    time.Duration // summed over segments: time blocked in WriteFrame and Close
}

// EncodeSegments encodes a video as the segments of Options.Plan, each
// from its own renderer (frames) and its own ffmpeg, as many at once as the
// budget allows, and hands the stitched stream (see Stitcher) to sink in
// order: segment 0 starts first and streams as it is encoded; later
// segments' output waits, bounded in memory, until their turn. The bytes do
// not depend on how many segments ran at once.
//
// It returns when every segment has been delivered, or on the first error,
// after stopping every encoder it started: no ffmpeg and no goroutine of it
// outlives the call. Cancelling ctx stops them all at once.
func EncodeSegments(ctx context.Context, cfg Segments, frames FrameSource, sink func(Segment) error) (SegmentStats, error) {
	o := cfg.Options.segmented()
	spans, err := o.Plan(o.Frames)
	if err != nil {
		return SegmentStats{}, err
	}
	if len(spans) == 0 {
		return SegmentStats{}, errors.New("encode: a segmented encode needs Options.Frames")
	}
	r := &segmentRun{cfg: cfg, o: o, spans: spans, frames: frames, stitcher: NewStitcher(sink)}
	if r.cfg.Start == nil {
		r.cfg.Start = func(ctx context.Context, o Options, sink func(Segment) error) (FrameWriter, error) {
			return Start(ctx, o, sink)
		}
	}
	if r.cfg.Budget == nil {
		r.cfg.Budget = NewBudget(1)
	}
	if r.cfg.SpoolMemory <= 0 {
		r.cfg.SpoolMemory = DefaultSpoolMemory
	}
	return r.run(ctx)
}

// segmentRun is one EncodeSegments call.
type segmentRun struct {
	cfg      Segments
	o        Options
	spans    []Span
	frames   FrameSource
	stitcher *Stitcher

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	parts  []*segmentPart
	// headStart is closed once segment 0 has sent its first fragment, or
	// ended: only then do other segments start, so they do not compete
	// with it for a CPU on the way to the first fragment.
	headStart     chan struct{}
	headStartOnce sync.Once

	running, maxRunning atomic.Int32
	// The video's first encoder from the budget, held from its first
	// segment to its last and passed from each segment to the next, so a
	// video once started never waits in line again and never stalls
	// mid-stream; encoders beyond it are borrowed per segment.
	releaseBase       func()      // set by launch before the first segment starts
	baseFree          atomic.Bool // no segment is using the base encoder
	drawing, encoding atomic.Int64
}

// segmentPart is one segment's state between its encoder and the stitcher.
type segmentPart struct {
	spool   *spool
	started chan struct{} // closed once the segment runs (or never will)
	done    chan error    // receives the segment's result once
}

func (r *segmentRun) run(parent context.Context) (SegmentStats, error) {
	r.ctx, r.cancel = context.WithCancelCause(parent)
	defer r.cancel(nil)
	r.headStart = make(chan struct{})
	r.parts = make([]*segmentPart, len(r.spans))
	for i := range r.parts {
		r.parts[i] = &segmentPart{
			spool:   newSpool(r.cfg.SpoolDir, r.cfg.SpoolMemory),
			started: make(chan struct{}),
			done:    make(chan error, 1),
		}
	}
	finished := make(chan struct{}, len(r.spans))
	r.wg.Go(func() { r.launch(finished) })
	err := r.deliver()
	if err != nil {
		r.cancel(err)
	}
	r.wg.Wait()
	if r.releaseBase != nil {
		r.releaseBase()
	}
	stats := SegmentStats{
		Segments:    len(r.spans),
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

// deliver hands the segments to the stitcher in order, each as soon as the
// one before it is complete, and returns the first error.
func (r *segmentRun) deliver() error {
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
				// another segment failed first and stopped this one
				return cause
			}
			return fmt.Errorf("encode: segment %d (frames %d–%d): %w", i, r.spans[i].First, r.spans[i].First+r.spans[i].Count-1, err)
		}
		if err := r.stitcher.EndSegment(); err != nil {
			return err
		}
	}
	return nil
}

// launch starts the segments in plan order, each once it holds an encoder:
// the video's base encoder, which it waits for in line, or one more from
// the budget while some are free. finished receives whenever one of this
// video's segments ends, which may free an encoder for the next.
func (r *segmentRun) launch(finished chan struct{}) {
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
		sink := p.spool.put
		if i == 0 {
			sink = func(seg Segment) error {
				if !seg.Init {
					r.startOthers()
				}
				return p.spool.put(seg)
			}
		}
		r.wg.Go(func() {
			err := r.encode(span, sink)
			if i == 0 {
				r.startOthers()
			}
			r.running.Add(-1)
			release()
			if err != nil {
				r.cancel(fmt.Errorf("encode: segment %d: %w", i, err))
			}
			p.done <- err
			finished <- struct{}{}
		})
	}
}

func (r *segmentRun) startOthers() {
	r.headStartOnce.Do(func() { close(r.headStart) })
}

// take gets an encoder for the next segment: the base one if it is free,
// else one from the budget if one is free there, else it waits for one of
// the video's segments to end.
func (r *segmentRun) take(finished chan struct{}) (release func(), err error) {
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

// encode runs one segment: its own renderer into its own encoder. A panic
// of the frame source or the encoder fails the segment, not the process:
// the goroutine is the package's own, out of any caller's recover.
func (r *segmentRun) encode(span Span, sink func(Segment) error) (err error) {
	o := r.o
	o.Frames = span.Count
	enc, err := r.cfg.Start(r.ctx, o, sink)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			r.cancel(err) // kills this encoder too, before Close waits for it
			if !closed {
				_ = enc.Close()
			}
		}
	}()
	start := time.Now()
	var writing time.Duration
	err = r.frames(r.ctx, span, func(yuv []byte) error {
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

// Budget is the process-wide bound on segment encoders running at once,
// shared by every video being encoded. A video's first encoder waits its
// turn in line (first come, first served) and stays the video's until its
// last segment; it takes more only while some are free and nobody waits,
// so a video borrowing extra encoders never overtakes one waiting for its
// first.
type Budget struct {
	// One token per running encoder. Blocked senders on a channel are
	// served in arrival order, and a token freed while one waits goes
	// straight to it, so tryAcquire cannot overtake a waiter.
	tokens chan struct{}
}

// NewBudget returns a Budget of n encoders (at least 1).
func NewBudget(n int) *Budget {
	return &Budget{tokens: make(chan struct{}, max(n, 1))}
}

// Size is the number of encoders b allows at once.
func (b *Budget) Size() int { return cap(b.tokens) }

func (b *Budget) acquire(ctx context.Context) (func(), error) {
	select {
	case b.tokens <- struct{}{}:
		return b.release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *Budget) tryAcquire() (func(), bool) {
	select {
	case b.tokens <- struct{}{}:
		return b.release, true
	default:
		return nil, false
	}
}

func (b *Budget) release() { <-b.tokens }
