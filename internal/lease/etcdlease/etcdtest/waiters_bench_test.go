package etcdtest

import (
	"sync"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/lease"
)

// BenchmarkWaitersDrain queues 200 waiting acquires on two replicas behind
// a full pool of capacity 5, then lets them through: each waiter releases
// its lease as soon as it has it. It reports the time to drain the line and
// the watch events that woke waiters: O(N) when each waiter watches only
// the one ahead of it (every waiter watching every departure is O(N²),
// about N²/2 = 20 000 here).
func BenchmarkWaitersDrain(b *testing.B) {
	const waiters, capacity = 200, 5
	endpoint := startEtcd(b)
	for b.Loop() {
		prefix := uniquePrefix(b)
		cfg := lease.Config{Capacity: capacity, TTL: time.Minute, MaxWaiting: waiters}
		a := newRegistry(b, newClient(b, endpoint), cfg, prefix)
		c := newRegistry(b, newClient(b, endpoint), cfg, prefix)
		var held []lease.Lease
		for range capacity {
			l, err := a.Acquire(b.Context(), lease.AcquireRequest{Holder: "holder"})
			if err != nil {
				b.Fatal(err)
			}
			held = append(held, l)
		}
		var wg sync.WaitGroup
		for i := range waiters {
			r := a
			if i%2 == 1 {
				r = c
			}
			wg.Go(func() {
				l, err := r.Acquire(b.Context(), lease.AcquireRequest{Holder: "waiter", Wait: true})
				if err != nil {
					b.Error(err)
					return
				}
				if err := r.Release(b.Context(), l.Token); err != nil {
					b.Error(err)
				}
			})
		}
		for {
			sa, _ := a.List(b.Context())
			sc, _ := c.List(b.Context())
			if sa.Waiting+sc.Waiting == waiters {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		start := time.Now()
		for _, l := range held {
			if err := a.Release(b.Context(), l.Token); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
		b.ReportMetric(time.Since(start).Seconds(), "drain-s")
		b.ReportMetric(float64(a.WaiterWakeups()+c.WaiterWakeups()), "watch-events")
	}
}
