package queue_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/whirl-dev/whirl/internal/queue"
)

// TestLimits walks a bounded line (one slot, two places, 1 s maximum wait)
// through fake time: a third waiter is refused at once, a waiter past the
// maximum wait leaves refused at exactly that instant, and the retry hints
// follow the measured hold time and the line ahead.
func TestLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxWait = time.Second
		s := queue.NewBounded(1, queue.Limits{MaxWaiting: 2, MaxWait: maxWait})

		// Nothing held yet: the hint falls back to the maximum wait.
		hold, err := s.Acquire(t.Context(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		refused := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := s.Acquire(t.Context(), nil, 0)
				refused <- err
			}()
		}
		synctest.Wait()
		if _, err := s.Acquire(t.Context(), nil, 0); !isRefused(err, true, maxWait) {
			t.Fatalf("third waiter: %v, want refused as full with a %v hint", err, maxWait)
		}
		for range 2 {
			if err := <-refused; !isRefused(err, false, maxWait) {
				t.Fatalf("waiter past the maximum wait: %v, want refused with a %v hint", err, maxWait)
			}
		}
		if waited := time.Since(start); waited != maxWait {
			t.Fatalf("waiters refused after %v, want exactly %v", waited, maxWait)
		}
		if r, w := s.Stats(); r != 1 || w != 0 {
			t.Fatalf("after the refusals: running %d waiting %d, want 1 and 0", r, w)
		}

		hold()
	})
}

// TestRetryHintFollowsHolds: with slots held 400 ms each, a caller refused
// behind a full line of two on one slot is told three rounds, 1.2 s.
func TestRetryHintFollowsHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const hold = 400 * time.Millisecond
		s := queue.NewBounded(1, queue.Limits{MaxWaiting: 2, MaxWait: time.Minute})
		for range 3 {
			release, err := s.Acquire(t.Context(), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(hold)
			release()
		}
		release, _ := s.Acquire(t.Context(), nil, 0)
		done := make(chan struct{}, 2)
		for range 2 {
			go func() {
				if r, err := s.Acquire(t.Context(), nil, 0); err == nil {
					r()
				}
				done <- struct{}{}
			}()
		}
		synctest.Wait()
		if _, err := s.Acquire(t.Context(), nil, 0); !isRefused(err, true, 3*hold) {
			t.Fatalf("behind a full line: %v, want refused as full with a %v hint", err, 3*hold)
		}
		release()
		<-done
		<-done
	})
}

func isRefused(err error, full bool, retry time.Duration) bool {
	var re *queue.RefusedError
	return errors.As(err, &re) && re.Full == full && re.RetryAfter == retry
}
