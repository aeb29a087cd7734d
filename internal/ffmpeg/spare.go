package ffmpeg

import (
	"sync"
)

// Spare keeps ffmpeg Processes started ahead of need for one Command, so a
// caller that needs one skips the start-up. Loading Debian's ffmpeg (over
// 200 shared libraries) costs ~0.1 s of CPU before it reads its first
// byte; a caller that takes a spare skips that wait. An idle spare sits
// blocked reading its stdin and costs memory, not CPU.
//
// A spare is replaced only once the process it lent has exited, not when it
// is taken: the start-up then runs after the work that took the spare
// rather than competing with it for the CPU, and the spare's processes,
// idle and lent, never number more than its size.
type Spare struct {
	template Command
	key      string
	size     int

	mu       sync.Mutex
	ready    []*Process // started, nothing written to them yet
	starting int        // being started
	lent     int        // handed out, not yet exited
	closed   bool
	wg       sync.WaitGroup
}

// NewSpare starts n spares (at least 1) of template.
func NewSpare(template Command, n int) *Spare {
	s := &Spare{template: template, key: template.key(), size: max(n, 1)}
	s.refill()
	return s
}

// Take hands over the oldest ready spare when c starts the same process as
// the template and one is ready, else returns nil. Its replacement starts
// once the handed-over process has exited (been reaped by its Wait).
func (s *Spare) Take(c Command) *Process {
	if c.key() != s.key {
		return nil
	}
	p := s.take()
	if p == nil {
		return nil
	}
	go func() {
		_ = p.Wait()
		s.mu.Lock()
		s.lent--
		s.mu.Unlock()
		s.refill()
	}()
	return p
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
	return p
}

// Idle reports what s holds for the next callers: the pids of the started
// processes, oldest first, and how many more are being started.
func (s *Spare) Idle() (ready []int, starting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.ready {
		ready = append(ready, p.PID())
	}
	return ready, s.starting
}

// refill starts spares in the background until ready, starting and lent
// make the size, unless s is closed.
func (s *Spare) refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ; !s.closed && len(s.ready)+s.starting+s.lent < s.size; s.starting++ {
		s.wg.Go(func() {
			p, err := Start(s.template)
			s.mu.Lock()
			s.starting--
			keep := err == nil && !s.closed
			if keep {
				s.ready = append(s.ready, p)
			}
			s.mu.Unlock()
			if err == nil && !keep {
				p.Stop()
			}
		})
	}
}

// Close kills the idle spares, reaps them, and waits for spares being
// started. Lent processes are their takers'.
func (s *Spare) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	for p := s.take(); p != nil; p = s.take() {
		p.Stop()
	}
}
