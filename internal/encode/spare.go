package encode

import (
	"context"
	"sync"
)

// Spare keeps one ffmpeg Process started ahead of need for the most common
// options. Loading Debian's ffmpeg (over 200 shared libraries) costs ~0.15 s
// of CPU before it reads its first frame; a render that takes the spare
// skips that wait, which is most of the time to its first fragment. An idle
// spare sits blocked reading its stdin and costs memory, not CPU.
//
// The spare's output does not depend on when it was started: it is the same
// process with the same arguments Start would run, and the Encoder around it
// is made for the caller, with the caller's context, Frames and sink.
type Spare struct {
	template Options

	mu     sync.Mutex
	ready  *Process      // started, nothing written to it yet
	filled chan struct{} // closed when ready is set; replaced when it is taken
	closed bool
	wg     sync.WaitGroup
}

// NewSpare starts the first spare for template (Frames is ignored: the same
// process serves any length).
func NewSpare(template Options) *Spare {
	template.Frames = 0
	s := &Spare{template: template, filled: make(chan struct{})}
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
	valid, err := o.withDefaults()
	if key != s.template || err != nil || sink == nil || ctx.Err() != nil {
		return Start(ctx, o, sink)
	}
	p := s.take()
	if p == nil {
		return Start(ctx, o, sink)
	}
	s.refill()
	return newEncoder(ctx, valid, p, sink), nil
}

// take removes the ready spare, if any, and returns it.
func (s *Spare) take() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.ready
	if p != nil {
		s.ready = nil
		s.filled = make(chan struct{})
	}
	return p
}

// refill starts a spare in the background unless one is ready or s is closed.
func (s *Spare) refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ready != nil {
		return
	}
	s.wg.Go(func() {
		p, err := StartProcess(s.template)
		if err != nil {
			return
		}
		s.mu.Lock()
		keep := !s.closed && s.ready == nil
		if keep {
			s.ready = p
			close(s.filled)
		}
		s.mu.Unlock()
		if !keep {
			p.Stop()
		}
	})
}

// Close kills the idle spare, if any, reaps it, and waits for a spare being
// started.
func (s *Spare) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	if p := s.take(); p != nil {
		p.Stop()
	}
}
