package queue_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFIFOWithPositions(t *testing.T) {
	s := queue.New(1)
	hold, err := s.Acquire(context.Background(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 3
	var (
		mu        sync.Mutex
		order     []int
		positions = make([][]int, waiters)
		wg        sync.WaitGroup
	)
	for i := range waiters {
		wg.Go(func() {
			release, err := s.Acquire(context.Background(), func(p int) {
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
			release()
		})
		// Wait until waiter i is in line so arrival order is known.
		for deadline := time.Now().Add(5 * time.Second); ; {
			if _, w := s.Stats(); w == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("waiter did not queue")
			}
			time.Sleep(time.Millisecond)
		}
	}
	hold()
	wg.Wait()
	if want := []int{0, 1, 2}; !slices.Equal(order, want) {
		t.Fatalf("admission order %v, want %v", order, want)
	}
	// The last waiter started third in line and only ever moved forward
	// (fast hand-offs may skip places it had no time to see).
	got := positions[2]
	if len(got) == 0 || got[0] != 3 || !slices.IsSortedFunc(got, func(a, b int) int { return b - a }) {
		t.Fatalf("positions seen by third waiter: %v", got)
	}
	if r, w := s.Stats(); r != 0 || w != 0 {
		t.Fatalf("stats after all released: running %d waiting %d", r, w)
	}
}

func TestHeartbeatRepeatsPosition(t *testing.T) {
	s := queue.New(1)
	hold, _ := s.Acquire(context.Background(), nil, 0)
	defer hold()
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	var seen []int
	_, err := s.Acquire(ctx, func(p int) { seen = append(seen, p) }, 20*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if len(seen) < 3 || slices.ContainsFunc(seen, func(p int) bool { return p != 1 }) {
		t.Fatalf("heartbeat positions %v: want several reports of place 1", seen)
	}
}

func TestCancelledWaiterLeavesLine(t *testing.T) {
	s := queue.New(1)
	hold, _ := s.Acquire(context.Background(), nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx, nil, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	hold()
	release, err := s.Acquire(context.Background(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	release()
	release() // idempotent
	if r, w := s.Stats(); r != 0 || w != 0 {
		t.Fatalf("slot leaked: running %d waiting %d", r, w)
	}
}

func TestNeverOverAdmits(t *testing.T) {
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
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*time.Millisecond+time.Millisecond)
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
	if peak > size {
		t.Fatalf("peak %d holders, limit %d", peak, size)
	}
	if r, w := s.Stats(); r != 0 || w != 0 {
		t.Fatalf("slots leaked: running %d waiting %d", r, w)
	}
}
