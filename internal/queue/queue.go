// Package queue is a first-come first-served counting semaphore whose waiters
// can watch their place in line. The render service uses it to bound how many
// animations render at once while telling queued clients where they stand.
package queue

import (
	"context"
	"sync"
	"time"
)

// Semaphore admits at most n holders; the rest wait in arrival order.
type Semaphore struct {
	mu      sync.Mutex
	size    int
	free    int
	waiters []*waiter
	// changed is closed and replaced whenever the line moves, waking every
	// watcher at once.
	changed chan struct{}
}

type waiter struct {
	admitted bool
}

// New returns a semaphore with n slots (n >= 1).
func New(n int) *Semaphore {
	n = max(n, 1)
	return &Semaphore{size: n, free: n, changed: make(chan struct{})}
}

// Acquire takes a slot, waiting in line if none is free. While waiting it
// calls onPosition (if not nil) with its 1-based place each time the place
// it observes changes, starting with the first (places passed through
// quickly may be skipped), and also every heartbeat if heartbeat > 0, so a
// watcher knows the wait is alive. onPosition runs on the caller's goroutine.
// Acquire returns release, to be called exactly once, or ctx's error after
// leaving the line.
func (s *Semaphore) Acquire(ctx context.Context, onPosition func(int), heartbeat time.Duration) (release func(), err error) {
	s.mu.Lock()
	if s.free > 0 && len(s.waiters) == 0 {
		s.free--
		s.mu.Unlock()
		return s.releaser(), nil
	}
	w := &waiter{}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	var tick <-chan time.Time
	if heartbeat > 0 && onPosition != nil {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		tick = t.C
	}
	last := 0
	for {
		s.mu.Lock()
		if w.admitted {
			s.mu.Unlock()
			return s.releaser(), nil
		}
		pos := s.position(w)
		changed := s.changed
		s.mu.Unlock()
		if pos != last && onPosition != nil {
			onPosition(pos)
			last = pos
		}
		select {
		case <-changed:
		case <-tick:
			last = 0 // report again even if unchanged
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			if w.admitted {
				// Handed a slot just as we gave up: pass it on.
				s.handOff()
			} else {
				s.remove(w)
			}
			s.broadcast()
			return nil, ctx.Err()
		}
	}
}

// Stats returns how many slots are held and how many callers wait.
func (s *Semaphore) Stats() (running, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.free, len(s.waiters)
}

func (s *Semaphore) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.handOff()
			s.broadcast()
		})
	}
}

// handOff gives a freed slot to the head waiter, or back to the pool.
// Callers hold mu.
func (s *Semaphore) handOff() {
	if len(s.waiters) == 0 {
		s.free++
		return
	}
	s.waiters[0].admitted = true
	s.waiters = s.waiters[1:]
}

func (s *Semaphore) position(w *waiter) int {
	for i, x := range s.waiters {
		if x == w {
			return i + 1
		}
	}
	return 0
}

func (s *Semaphore) remove(w *waiter) {
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i:i], s.waiters[i+1:]...)
			return
		}
	}
}

func (s *Semaphore) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}
