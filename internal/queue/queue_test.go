package queue_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The tests run in testing/synctest bubbles: their clock is fake, so
// deadlines and heartbeats are exact, and synctest.Wait tells when every
// waiter has settled in line instead of polling for it.

func TestFIFOWithPositions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := queue.New(1)
		hold, err := s.Acquire(t.Context(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		const waiters = 3
		var (
			mu        sync.Mutex
			order     []int
			positions = make([][]int, waiters)
			proceed   [waiters]chan struct{}
			wg        sync.WaitGroup
		)
		for i := range waiters {
			proceed[i] = make(chan struct{})
			wg.Go(func() {
				release, err := s.Acquire(t.Context(), func(p int) {
					mu.Lock()
					positions[i] = append(positions[i], p)
					mu.Unlock()
				}, 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				<-proceed[i] // hold the slot until the test has looked
				release()
			})
			synctest.Wait() // waiter i is in line: arrival order is known
			if _, w := s.Stats(); w != i+1 {
				t.Fatalf("%d waiting after starting waiter %d, want %d", w, i, i+1)
			}
		}
		hold()
		for i := range waiters {
			synctest.Wait()
			mu.Lock()
			if want := []int{0, 1, 2}[:i+1]; !slices.Equal(order, want) {
				t.Errorf("admitted %v, want %v", order, want)
			}
			mu.Unlock()
			close(proceed[i])
		}
		wg.Wait()
		// Each waiter saw every place from its first down to the head.
		for i, want := range [][]int{{1}, {2, 1}, {3, 2, 1}} {
			if !slices.Equal(positions[i], want) {
				t.Errorf("waiter %d saw places %v, want %v", i, positions[i], want)
			}
		}
		if r, w := s.Stats(); r != 0 || w != 0 {
			t.Fatalf("stats after all released: running %d waiting %d", r, w)
		}
	})
}

func TestHeartbeatRepeatsPosition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := queue.New(1)
		hold, _ := s.Acquire(t.Context(), nil, 0)
		defer hold()
		const patience, heartbeat = 250 * time.Millisecond, 20 * time.Millisecond
		ctx, cancel := context.WithTimeout(t.Context(), patience)
		defer cancel()
		var seen []int
		_, err := s.Acquire(ctx, func(p int) { seen = append(seen, p) }, heartbeat)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		// Once on joining, then once per heartbeat until the deadline.
		want := slices.Repeat([]int{1}, 1+int(patience/heartbeat))
		if !slices.Equal(seen, want) {
			t.Fatalf("heartbeat positions %v, want %v", seen, want)
		}
	})
}

func TestCancelledWaiterLeavesLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := queue.New(1)
		hold, _ := s.Acquire(t.Context(), nil, 0)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := s.Acquire(ctx, nil, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want deadline exceeded", err)
		}
		hold()
		release, err := s.Acquire(t.Context(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		release()
		release() // idempotent
		if r, w := s.Stats(); r != 0 || w != 0 {
			t.Fatalf("slot leaked: running %d waiting %d", r, w)
		}
	})
}

// TestNeverOverAdmits races 200 callers, with deadlines spread over the time
// the holders keep their slots, against each other.
func TestNeverOverAdmits(t *testing.T) {
	synctest.Test(t, testNeverOverAdmits)
}

func testNeverOverAdmits(t *testing.T) {
	const size = 3
	s := queue.New(size)
	var (
		mu      sync.Mutex
		running int
		peak    int
		wg      sync.WaitGroup
	)
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%7)*time.Millisecond+time.Millisecond)
			defer cancel()
			release, err := s.Acquire(ctx, nil, 0)
			if err != nil {
				return
			}
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
			mu.Lock()
			running--
			mu.Unlock()
			release()
		})
	}
	wg.Wait()
	if peak != size {
		t.Fatalf("peak %d holders, want the limit %d reached and never passed", peak, size)
	}
	if r, w := s.Stats(); r != 0 || w != 0 {
		t.Fatalf("slots leaked: running %d waiting %d", r, w)
	}
}
