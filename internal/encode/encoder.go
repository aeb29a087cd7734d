package encode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/whirl-dev/whirl/internal/ffmpeg"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/i420"
)

// Encoder is one encode: it feeds frames to an ffmpeg process, cuts the
// process's output into init and media segments for a sink
// (fmp4.ReadSegments), and settles one result. WriteFrame and Close must not be called concurrently with each
// other (to abort from elsewhere, cancel the context given to Start); PID
// may be called at any time.
//
// Encoders share nothing: to encode one render in several spans at once,
// start one Encoder per span, each with its own sink.
type Encoder struct {
	o         Options // validated; never changed after Start
	frameSize int
	proc      *ffmpeg.Process
	stopCtx   func() bool

	written atomic.Int64 // frames handed to ffmpeg
	closing atomic.Bool  // Close has been called

	mu       sync.Mutex
	cause    error // first reason to stop early: ctx, sink, malformed output
	writeErr error // WriteFrame found ffmpeg gone

	done   chan struct{} // closed once ffmpeg is reaped and the output read
	result error         // set before done closes

	closeOnce sync.Once
	closeErr  error
}

// Start runs ffmpeg for o and returns at once; segments reach sink, in
// order, from a goroutine of the Encoder's, as soon as ffmpeg writes them.
// sink must return promptly once ctx is done. If sink returns an error the
// encode stops and WriteFrame and Close report that error.
//
// Cancelling ctx kills ffmpeg and reaps it, whether or not Close is called.
func Start(ctx context.Context, o Options, sink func(fmp4.Segment) error) (*Encoder, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("encode: nil sink")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("encode: %w", context.Cause(ctx))
	}
	p, err := ffmpeg.Start(command(o))
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return newEncoder(ctx, o, p, sink), nil
}

// newEncoder runs the encode of o (validated) on p, a started ffmpeg for
// the same arguments that nothing has written to or read from yet.
func newEncoder(ctx context.Context, o Options, p *ffmpeg.Process, sink func(fmp4.Segment) error) *Encoder {
	e := &Encoder{
		o:         o,
		frameSize: i420.Size(o.Width, o.Height),
		proc:      p,
		done:      make(chan struct{}),
	}
	// registered before the goroutines start: settle calls stopCtx
	e.stopCtx = context.AfterFunc(ctx, func() {
		e.fail(fmt.Errorf("encode: %w", context.Cause(ctx)))
	})
	read := make(chan readResult, 1)
	go func() {
		defer p.Stdout().Close()
		frames, err := fmp4.ReadSegments(p.Stdout(), sink)
		read <- readResult{frames, err}
	}()
	go e.settle(read)
	return e
}

// readResult is what ReadSegments returned.
type readResult struct {
	frames int
	err    error
}

// PID is the process id of the ffmpeg child.
func (e *Encoder) PID() int { return e.proc.PID() }

// fail records the first cause of an early stop and kills the child.
func (e *Encoder) fail(cause error) {
	e.mu.Lock()
	if e.cause == nil && cause != nil {
		e.cause = cause
	}
	e.mu.Unlock()
	e.proc.Kill()
}

func (e *Encoder) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cause
}

// settle reaps the child once its output has been read, or at once when it
// has been killed, then sets the result.
func (e *Encoder) settle(read <-chan readResult) {
	var r readResult
	got := false
	select {
	case r = <-read:
		got = true
		r.err = e.readFailed(r.err)
	case <-e.proc.Killed():
	}
	exitErr := e.proc.Wait()
	if !got {
		r = <-read
		r.err = e.readFailed(r.err)
	}
	e.stopCtx()
	_ = e.proc.Stdin().Close() // if Close was never called

	cause := e.failure()
	switch {
	case cause != nil:
		if errors.Is(cause, fmp4.ErrMalformed) {
			cause = fmt.Errorf("%w%s", cause, e.proc.StderrNote())
		}
		e.result = cause
	case exitErr != nil:
		// a truncated output is explained by the exit status
		e.result = fmt.Errorf("encode: ffmpeg failed: %w%s", exitErr, e.proc.StderrNote())
	case r.err != nil:
		e.result = fmt.Errorf("%w%s", r.err, e.proc.StderrNote())
	case int64(r.frames) != e.written.Load():
		e.result = fmt.Errorf("encode: ffmpeg output: %w: %d frames in the output, %d written", fmp4.ErrMalformed, r.frames, e.written.Load())
	}
	close(e.done)
}

// readFailed sorts out why reading the output stopped early. It returns the
// error to report if ffmpeg's exit status does not explain it better, and
// kills ffmpeg when the output is unusable while ffmpeg may still run.
func (e *Encoder) readFailed(err error) error {
	if err == nil || e.failure() != nil {
		// done, or cut short by a kill whose cause explains it
		return nil
	}
	switch {
	case errors.Is(err, fmp4.ErrTruncated):
		// ffmpeg stopped writing: it has exited or is exiting, and its
		// exit status is the better explanation; settle decides
		return fmt.Errorf("encode: ffmpeg output: %w", err)
	case errors.Is(err, fmp4.ErrMalformed):
		e.fail(fmt.Errorf("encode: ffmpeg output: %w", err))
	default: // the sink's error, or reading the pipe failed
		e.fail(err)
	}
	return nil
}

// WriteFrame sends one I420 frame (i420.Size(Width, Height) bytes: the Y
// plane, then U, then V) to ffmpeg. It blocks while ffmpeg is busy, which is
// the encoder's backpressure. After a failure it returns the cause: the
// context's error, the sink's error, or ffmpeg's exit status with the tail
// of its stderr.
func (e *Encoder) WriteFrame(yuv []byte) error {
	if len(yuv) != e.frameSize {
		return fmt.Errorf("encode: frame of %d bytes, want %d for %dx%d I420", len(yuv), e.frameSize, e.o.Width, e.o.Height)
	}
	if e.o.Frames > 0 && e.written.Load() >= int64(e.o.Frames) {
		return fmt.Errorf("encode: frame %d is more than the %d announced", e.written.Load()+1, e.o.Frames)
	}
	if err := e.failure(); err != nil {
		return err
	}
	select {
	case <-e.done:
		return errors.New("encode: WriteFrame after the encoder finished")
	default:
	}
	if _, err := e.proc.Stdin().Write(yuv); err != nil {
		if e.closing.Load() {
			return errors.New("encode: WriteFrame after Close")
		}
		// ffmpeg is gone or going (or was killed and reaped): make sure,
		// then say why
		e.fail(nil)
		exitErr := e.proc.Wait()
		if cause := e.failure(); cause != nil {
			return cause
		}
		status := "exited normally"
		if exitErr != nil {
			status = exitErr.Error()
		}
		werr := fmt.Errorf("encode: ffmpeg stopped reading frames at frame %d: %w (ffmpeg: %s%s)", e.written.Load()+1, err, status, e.proc.StderrNote())
		e.mu.Lock()
		e.writeErr = werr
		e.mu.Unlock()
		return werr
	}
	e.written.Add(1)
	return nil
}

// Close ends the input, waits until ffmpeg has exited and every segment has
// been handed to the sink, and reports the first error of the encode. It is
// safe to call more than once, and returns the same result each time.
func (e *Encoder) Close() error {
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		_ = e.proc.Stdin().Close()
		<-e.done
		e.mu.Lock()
		e.closeErr = e.result
		if e.closeErr == nil {
			// ffmpeg exited cleanly but had stopped taking frames
			e.closeErr = e.writeErr
		}
		e.mu.Unlock()
		if e.closeErr == nil && e.o.Frames > 0 && e.written.Load() != int64(e.o.Frames) {
			e.closeErr = fmt.Errorf("encode: closed after %d of %d frames", e.written.Load(), e.o.Frames)
		}
	})
	return e.closeErr
}
