// Package queue is a first-come first-served counting semaphore whose waiters
// can watch their place in line. The render service uses it to bound how many
// animations and stills render at once while telling queued clients where
// they stand, and to turn away callers once the line is too long or a wait
// too old.
package queue

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Limits bound a line; a zero field means no bound.
type Limits struct {
	// MaxWaiting is how many callers may wait; one more is refused at once.
	MaxWaiting int
	// MaxWait is how long a caller may wait; past it, it leaves the line
	// refused.
	MaxWait time.Duration
}

// RefusedError is a caller turned away by Limits.
type RefusedError struct {
	// Full says the line was at MaxWaiting; otherwise the caller waited
	// MaxWait without a slot.
	Full bool
	// RetryAfter estimates when a newcomer would get a slot: the callers
	// ahead of it, in rounds of one per slot, times the mean time a slot is
	// held (MaxWait until a hold has been measured).
	RetryAfter time.Duration
}

func (e *RefusedError) Error() string {
	if e.Full {
		return fmt.Sprintf("queue: line full; a slot expected in %s", e.RetryAfter)
	}
	return fmt.Sprintf("queue: waited too long; a slot expected in %s", e.RetryAfter)
}

// holdWeight is the weight of the latest hold in the mean hold time: about
// the last eight holds count.
const holdWeight = 8

// Semaphore admits at most n holders; the rest wait in arrival order.
type Semaphore struct {
	mu      sync.Mutex
	size    int
	free    int
	limits  Limits
	waiters []*waiter
	// meanHold is a moving mean of how long a slot is held, for retry hints.
	meanHold time.Duration
	// changed is closed and replaced whenever the line moves, waking every
	// watcher at once.
	changed chan struct{}
}

type waiter struct {
	admitted bool
}

// New returns a semaphore with n slots (n >= 1) and an unbounded line.
func New(n int) *Semaphore { return NewBounded(n, Limits{}) }

// NewBounded returns a semaphore with n slots (n >= 1) and a line bounded by
// l.
func NewBounded(n int, l Limits) *Semaphore {
	n = max(n, 1)
	return &Semaphore{size: n, free: n, limits: l, changed: make(chan struct{})}
}

// Acquire takes a slot, waiting in line if none is free. While waiting it
// calls onPosition (if not nil) with its 1-based place each time the place
// it observes changes, starting with the first (places passed through
// quickly may be skipped), and also every heartbeat if heartbeat > 0, so a
// watcher knows the wait is alive. onPosition runs on the caller's goroutine.
// Acquire returns release, to be called exactly once; or a *RefusedError if
// the line is full or the wait passes the Limits' MaxWait; or ctx's error
// after leaving the line.
func (s *Semaphore) Acquire(ctx context.Context, onPosition func(int), heartbeat time.Duration) (release func(), err error) {
	s.mu.Lock()
	if s.free > 0 && len(s.waiters) == 0 {
		s.free--
		s.mu.Unlock()
		return s.releaser(), nil
	}
	if s.limits.MaxWaiting > 0 && len(s.waiters) >= s.limits.MaxWaiting {
		defer s.mu.Unlock()
		return nil, &RefusedError{Full: true, RetryAfter: s.retryAfter()}
	}
	w := &waiter{}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	var tick, tooLong <-chan time.Time
	if heartbeat > 0 && onPosition != nil {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		tick = t.C
	}
	if s.limits.MaxWait > 0 {
		t := time.NewTimer(s.limits.MaxWait)
		defer t.Stop()
		tooLong = t.C
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
		case <-tooLong:
			s.mu.Lock()
			defer s.mu.Unlock()
			if w.admitted {
				// Handed a slot as the wait ran out: it is still wanted.
				return s.releaser(), nil
			}
			s.remove(w)
			s.broadcast()
			return nil, &RefusedError{RetryAfter: s.retryAfter()}
		case <-ctx.Done():
			s.leave(w)
			return nil, ctx.Err()
		}
	}
}

// leave takes w, whose caller has gone, out of the line; a slot handed to
// it just as it went goes on to the next in line.
func (s *Semaphore) leave(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.admitted {
		s.handOff()
	} else {
		s.remove(w)
	}
	s.broadcast()
}

// retryAfter is RefusedError.RetryAfter for a caller arriving now. Callers
// hold mu.
func (s *Semaphore) retryAfter() time.Duration {
	if s.meanHold == 0 {
		return s.limits.MaxWait
	}
	rounds := len(s.waiters)/s.size + 1
	return time.Duration(rounds) * s.meanHold
}

// Limits returns the bounds of the line.
func (s *Semaphore) Limits() Limits { return s.limits }

// Stats returns how many slots are held and how many callers wait.
func (s *Semaphore) Stats() (running, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.free, len(s.waiters)
}

func (s *Semaphore) releaser() func() {
	var once sync.Once
	start := time.Now()
	return func() {
		once.Do(func() {
			held := time.Since(start)
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.meanHold == 0 {
				s.meanHold = held
			} else {
				s.meanHold += (held - s.meanHold) / holdWeight
			}
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
