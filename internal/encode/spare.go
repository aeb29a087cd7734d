package encode

import (
	"context"
	"sync"
	"sync/atomic"
)

// Spare keeps one ffmpeg started ahead of need for the most common options.
// Loading Debian's ffmpeg (over 200 shared libraries) costs ~0.15 s of CPU
// before it reads its first frame; a render that takes the spare skips that
// wait, which is most of the time to its first fragment. An idle spare
// sits blocked reading its stdin and costs memory, not CPU.
//
// The spare's output does not depend on when it was started: it is the same
// process with the same arguments Start would run.
type Spare struct {
	template Options

	mu     sync.Mutex
	ready  *spareEncoder
	closed bool
	wg     sync.WaitGroup
}

type spareEncoder struct {
	enc    *Encoder
	cancel context.CancelFunc
	sink   atomic.Pointer[func(Segment) error]
}

// NewSpare starts the first spare for template (Frames is ignored: the same
// process serves any length).
func NewSpare(template Options) *Spare {
	template.Frames = 0
	s := &Spare{template: template}
	s.refill()
	return s
}

// Start is like the package's Start, but hands over the spare when o
// matches the template (any Frames) and one is ready; it then starts the next
// spare in the background. ctx governs the handed-over encoder exactly as it
// would one started fresh.
func (s *Spare) Start(ctx context.Context, o Options, sink func(Segment) error) (*Encoder, error) {
	key := o
	key.Frames = 0
	if key != s.template || sink == nil || ctx.Err() != nil {
		return Start(ctx, o, sink)
	}
	s.mu.Lock()
	sp := s.ready
	s.ready = nil
	s.mu.Unlock()
	if sp == nil {
		return Start(ctx, o, sink)
	}
	sp.sink.Store(&sink)
	// The spare was started under the Spare's own context; tie it to the
	// caller's from now on.
	context.AfterFunc(ctx, sp.cancel)
	sp.enc.o.Frames = o.Frames
	s.refill()
	return sp.enc, nil
}

// refill starts a spare in the background unless one is ready or s is closed.
func (s *Spare) refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ready != nil {
		return
	}
	s.wg.Go(func() {
		ctx, cancel := context.WithCancel(context.Background())
		sp := &spareEncoder{cancel: cancel}
		// No output arrives before the first frame is written, and the sink
		// is set before the encoder is handed over.
		enc, err := Start(ctx, s.template, func(seg Segment) error { return (*sp.sink.Load())(seg) })
		if err != nil {
			cancel()
			return
		}
		sp.enc = enc
		s.mu.Lock()
		keep := !s.closed && s.ready == nil
		if keep {
			s.ready = sp
		}
		s.mu.Unlock()
		if !keep {
			cancel()
			_ = enc.Close() // reaped before Close returns
		}
	})
}

// Close kills the idle spare, if any, and waits for a spare being started.
func (s *Spare) Close() {
	s.mu.Lock()
	s.closed = true
	sp := s.ready
	s.ready = nil
	s.mu.Unlock()
	s.wg.Wait()
	if sp != nil {
		sp.cancel()
		_ = sp.enc.Close()
	}
}
