package clock

import (
	"slices"
	"sync"
	"time"
)

// Fake is a manual clock for tests: time stands still until Advance.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a Fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

type fakeTimer struct {
	clock   *Fake
	when    time.Time
	f       func()
	stopped bool
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f for when the fake time reaches Now()+d.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// Stop cancels the timer.
func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	if t.stopped {
		return false
	}
	t.stopped = true
	return true
}

// Advance moves time forward by d and runs, in time order and synchronously,
// every callback that falls due. Time steps to each callback's deadline before
// it runs, so a callback sees Now() as a real timer would, and a callback that
// schedules another one inside the window (a timer re-arming itself) has that
// one run too, as it would have been on a real clock.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		t := c.popDueLocked(end)
		if t == nil {
			break
		}
		if t.when.After(c.now) {
			c.now = t.when
		}
		// Run f unlocked: it may call Now, AfterFunc or Stop.
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	if end.After(c.now) {
		c.now = end
	}
	c.mu.Unlock()
}

// popDueLocked removes and returns the earliest pending timer due by end
// (the first scheduled among equals), marking it fired; nil if there is none.
// Stopped timers are dropped on the way.
func (c *Fake) popDueLocked(end time.Time) *fakeTimer {
	var next *fakeTimer
	pending := c.timers[:0]
	for _, t := range c.timers {
		if t.stopped {
			continue
		}
		pending = append(pending, t)
		if !t.when.After(end) && (next == nil || t.when.Before(next.when)) {
			next = t
		}
	}
	clear(c.timers[len(pending):])
	c.timers = pending
	if next == nil {
		return nil
	}
	next.stopped = true
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t == next })
	return next
}
