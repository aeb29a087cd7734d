package encode

import (
	"context"
	"sync"
)

// Spare keeps ffmpeg Processes started ahead of need for the most common
// options, as many as SpareSize says for the server's encoders, so every
// segment encoder of a render, not only the first, skips the start-up. Loading
// Debian's ffmpeg (over 200 shared libraries) costs ~0.1 s of CPU before it
// reads its first frame; a render that takes the spare skips that wait,
// which is most of the time to its first fragment. An idle spare sits
// blocked reading its stdin and costs memory, not CPU.
//
// A spare is replaced only once the process it lent has exited, not when it
// is taken: the start-up then runs after the encode that took the spare
// rather than competing with it for the CPU, and the spare's processes,
// idle and lent, never number more than its size.
//
// The spare's output does not depend on when it was started: it is the same
// process with the same arguments Start would run, and the Encoder around it
// is made for the caller, with the caller's context, Frames and sink.
type Spare struct {
	template Options
	size     int

	mu       sync.Mutex
	ready    []*Process    // started, nothing written to them yet
	starting int           // being started
	lent     int           // handed out, not yet exited
	filled   chan struct{} // closed while ready is not empty; replaced when it empties
	closed   bool
	wg       sync.WaitGroup
}

// SpareSize is the number of spares to keep beside a budget of encoders:
// one per encoder a render can use, and one more, because a spare is only
// replaced once the process it lent exits: without it, the next render
// after a busy one would start its first segment cold.
func SpareSize(encoders int) int { return encoders + 1 }

// NewSpare starts n spares (at least 1) for template (Frames is ignored:
// the same process serves any length).
func NewSpare(template Options, n int) *Spare {
	template.Frames = 0
	s := &Spare{template: template, size: max(n, 1), filled: make(chan struct{})}
	s.refill()
	return s
}

// Start is like the package's Start, but hands over the spare when o
// matches the template (any Frames) and one is ready; its replacement
// starts once the handed-over ffmpeg has exited. ctx governs the
// handed-over encoder exactly as it would one started fresh.
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
	e := newEncoder(ctx, valid, p, sink)
	go func() {
		<-e.done
		s.mu.Lock()
		s.lent--
		s.mu.Unlock()
		s.refill()
	}()
	return e, nil
}

// take removes the oldest ready spare, if any, and returns it, counted
// as lent.
func (s *Spare) take() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ready) == 0 {
		return nil
	}
	p := s.ready[0]
	s.ready = s.ready[1:]
	s.lent++
	if len(s.ready) == 0 {
		s.filled = make(chan struct{})
	}
	return p
}

// refill starts spares in the background until ready, starting and lent
// make the size, unless s is closed.
func (s *Spare) refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ; !s.closed && len(s.ready)+s.starting+s.lent < s.size; s.starting++ {
		s.wg.Go(func() {
			p, err := StartProcess(s.template)
			s.mu.Lock()
			s.starting--
			keep := err == nil && !s.closed
			if keep {
				s.ready = append(s.ready, p)
				if len(s.ready) == 1 {
					close(s.filled)
				}
			}
			s.mu.Unlock()
			if err == nil && !keep {
				p.Stop()
			}
		})
	}
}

// Close kills the idle spares, reaps them, and waits for spares being
// started.
func (s *Spare) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	for p := s.take(); p != nil; p = s.take() {
		p.Stop()
	}
}
