package render

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/i420"
)

// slot is one in-flight frame: its RGBA buffer and canvas, its YUV output,
// and the signal that a worker has finished it.
type slot struct {
	fr    *frame
	yuv   []byte
	index int
	err   error
	done  chan struct{} // receives once per use, when yuv is ready (or err set)
}

// Frames renders every frame of c's animation (o.Frames of them) and calls emit
// with each one's planar I420 image (see ToYUV420), in frame order, on the
// calling goroutine.
//
// A single trail stage advances the trail layer frame by frame, keeping a YUV
// copy of it up to date by converting only what each new segment touched,
// and hands each frame to one of workers goroutines (at least 1) with the
// trail's YUV and the part of its pixels the wheels overlay can reach; the
// workers draw the overlay there and convert just that part to YUV, in
// parallel, and the results are put back in order. The output is identical
// to converting Still's image of each frame whole, for any worker count.
//
// At most workers+2 frames are in flight, each in a reused buffer (memory is
// about (workers+3)·5.5·Width·Height bytes; workers is capped at MaxWorkers):
// the yuv slice passed to emit is only valid until emit returns and is then
// overwritten — emit must not retain it, and must copy what it wants to keep.
//
// Frames returns the first error: emit's, ctx's (cancelling ctx stops every
// goroutine promptly), or a recovered panic of the drawing goroutines. No
// goroutine outlives the call. o.Width and o.Height must be even.
func Frames(ctx context.Context, c curve.Curve, o Options, workers int, emit func(frame int, yuv []byte) error) error {
	return FrameRange(ctx, c, o, 0, o.WithDefaults().Frames, workers, emit)
}

// FrameRange is Frames for the count frames from first on only: it starts
// cold at frame first (replaying the trail's strokes up to it, which costs
// far less than drawing the frames) and emits exactly the bytes Frames
// emits for those frames. Video segments drawn side by side use it.
func FrameRange(ctx context.Context, c curve.Curve, o Options, first, count, workers int, emit func(frame int, yuv []byte) error) error {
	o = o.WithDefaults()
	if o.Width%2 != 0 || o.Height%2 != 0 {
		return fmt.Errorf("render: video frames need an even width and height, got %dx%d", o.Width, o.Height)
	}
	if first < 0 || count < 0 || first+count > o.Frames {
		return fmt.Errorf("render: frames [%d, %d) are not within the animation's %d", first, first+count, o.Frames)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return newScene(c, o).run(ctx, first, first+count, workers, emit)
}

// MaxWorkers caps Frames' workers argument.
const MaxWorkers = 64

// pipeline is one run's plumbing: slots cycle free → (trail stage) → jobs
// and order → (workers) → done → (consumer) → free.
type pipeline struct {
	sc          *scene
	first, end  int
	nslots      int
	free        chan *slot // finished with, ready for reuse
	order       chan *slot // filled, in frame order, for the consumer
	jobs        chan *slot // filled, for the workers
	producerErr error      // set before order is closed
}

// run is FrameRange for a prepared scene and the frames [first, end).
func (sc *scene) run(ctx context.Context, first, end, workers int, emit func(frame int, yuv []byte) error) error {
	workers = min(MaxWorkers, max(1, workers))
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	n := workers + 2
	p := &pipeline{sc: sc, first: first, end: end, nslots: n,
		free: make(chan *slot, n), order: make(chan *slot, n), jobs: make(chan *slot, n)}
	wg.Go(func() { p.trailStage(ctx) })
	for range workers {
		wg.Go(func() { p.work(ctx) })
	}
	return p.consume(ctx, parent, emit)
}

// trailStage advances the trail frame by frame and hands each prepared
// frame to the workers and, in order, to the consumer.
func (p *pipeline) trailStage(ctx context.Context) {
	defer close(p.order)
	defer close(p.jobs)
	defer func() {
		if r := recover(); r != nil {
			p.producerErr = fmt.Errorf("render: panic in trail stage: %v\n%s", r, debug.Stack())
		}
	}()
	tr := p.sc.newTrail()
	tr.trackYUV()
	created := 0
	for f := p.first; f < p.end; f++ {
		var s *slot
		select {
		case s = <-p.free:
		default:
			if created < p.nslots {
				created++
				s = p.sc.newSlot()
			} else {
				select {
				case s = <-p.free:
				case <-ctx.Done():
					return
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		p.sc.prepare(tr, s, f)
		p.order <- s // never blocks: at most nslots slots exist
		p.jobs <- s
	}
}

// work draws overlays and converts frames until the jobs run out.
func (p *pipeline) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s, ok := <-p.jobs:
			if !ok {
				return
			}
			s.err = p.sc.finish(s)
			s.done <- struct{}{}
		}
	}
}

// consume emits the finished frames in order on the calling goroutine.
func (p *pipeline) consume(ctx, parent context.Context, emit func(frame int, yuv []byte) error) error {
	emitted := 0
	for s := range p.order {
		select {
		case <-s.done:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return ctxErr(parent, ctx)
		}
		if s.err != nil {
			return s.err
		}
		if err := emit(s.index, s.yuv); err != nil {
			return err
		}
		emitted++
		p.free <- s // never blocks: capacity nslots
	}
	if p.producerErr != nil {
		return p.producerErr
	}
	if emitted < p.end-p.first {
		return ctxErr(parent, ctx)
	}
	return nil
}

func (sc *scene) newSlot() *slot {
	return &slot{fr: sc.newFrame(), yuv: make([]byte, i420.Size(sc.o.Width, sc.o.Height)), done: make(chan struct{}, 1)}
}

// prepare is the trail stage's work for frame f: advance the trail (and its
// YUV) to f and give s the trail's YUV and the pixels under the overlay.
func (sc *scene) prepare(tr *trail, s *slot, f int) {
	tr.advance(f)
	s.index, s.err = f, nil
	copy(s.yuv, tr.yuv)
	sc.overlayRegion(s.fr, f)
	s.fr.region.copyPix(s.fr.img, tr.img)
}

// finish draws the overlay of s's frame and converts it to YUV, turning a
// panic into an error.
func (sc *scene) finish(s *slot) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("render: panic drawing frame %d: %v\n%s", s.index, r, debug.Stack())
		}
	}()
	if sc.testHook != nil {
		sc.testHook(s.index)
	}
	sc.overlay(s.fr, s.index)
	s.fr.region.convert(s.yuv, s.fr.img)
	return nil
}

// ctxErr is the parent's error if it has one, else the inner context's.
func ctxErr(parent, inner context.Context) error {
	if err := parent.Err(); err != nil {
		return err
	}
	if err := inner.Err(); err != nil {
		return err
	}
	return errors.New("render: stopped early")
}
