package lease_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/lease/leasetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestMemorySuite holds Memory to the contract every Registry must meet, in
// synctest bubbles: the suite's sleeps move the bubble's clock, not the wall's.
func TestMemorySuite(t *testing.T) {
	leasetest.RunInBubble(t, func(t *testing.T, cfg lease.Config) lease.Registry {
		return lease.NewMemory(cfg)
	})
}

// TestMemoryTiming covers timing exactly. Each case runs in a synctest
// bubble, whose clock moves only when every goroutine in it is blocked, so
// f.advance(d) moves the registry's time by exactly d and runs what falls due.
func TestMemoryTiming(t *testing.T) {
	const ttl = 10 * time.Second
	tests := []struct {
		name string
		cfg  lease.Config
		run  func(t *testing.T, f *fixture)
	}{
		{"ExpiryWithoutTrafficServesWaiter", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			w := f.wait(t, "w", 1)
			// From here on only the clock moves: no call could expire the
			// lease on read, so the timer has to.
			f.advance(ttl - time.Nanosecond)
			f.notServed(t, w)
			f.advance(time.Nanosecond)
			l := f.served(t, w, "w")
			if !l.AcquiredAt.Equal(f.at(ttl)) {
				t.Errorf("waiter's lease acquired at %v, want the holder's expiry %v", l.AcquiredAt, f.at(ttl))
			}
			f.wantNotFound(t, a.Token)
			f.obs.want(t, 2, 0, 1, 0)
		}},
		{"SlidingRenewal", lease.Config{Capacity: 1, TTL: ttl, MaxAge: time.Hour}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			if !a.ExpiresAt.Equal(f.at(ttl)) || !a.MaxExpiresAt.Equal(f.at(time.Hour)) || a.TTL != ttl {
				t.Fatalf("new lease %+v: want expiry %v, max %v, TTL %v", a, f.at(ttl), f.at(time.Hour), ttl)
			}
			f.advance(8 * time.Second)
			f.renew(t, a.Token, f.at(18*time.Second))
			f.advance(8 * time.Second) // past the first expiry
			f.renew(t, a.Token, f.at(26*time.Second))
			f.advance(ttl - time.Nanosecond)
			f.wantLeases(t, 1)
			f.advance(time.Nanosecond) // ExpiresAt <= now: gone
			f.wantLeases(t, 0)
			f.wantNotFound(t, a.Token)
			f.obs.want(t, 1, 0, 1, 0)
		}},
		{"Release", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			if err := f.m.Release(f.ctx, a.Token); err != nil {
				t.Fatalf("Release: %v", err)
			}
			b := f.acquire(t, "b")
			if err := f.m.Release(f.ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
				t.Errorf("Release of a released lease: %v, want ErrNotFound", err)
			}
			f.renew(t, b.Token, f.at(ttl))
			f.advance(time.Hour)
			f.obs.want(t, 2, 0, 1, 1)
		}},
		{"MaxAge", lease.Config{Capacity: 1, TTL: ttl, MaxAge: 25 * time.Second}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			f.advance(9 * time.Second)
			f.renew(t, a.Token, f.at(19*time.Second))
			f.advance(6 * time.Second) // now+TTL == MaxExpiresAt: allowed
			f.renew(t, a.Token, f.at(25*time.Second))
			f.advance(time.Second) // now+TTL passes MaxExpiresAt
			if _, err := f.m.Renew(f.ctx, a.Token); !errors.Is(err, lease.ErrTooOld) {
				t.Fatalf("Renew past max age: %v, want ErrTooOld", err)
			}
			// Still live until its current expiry.
			f.advance(9*time.Second - time.Nanosecond)
			if s := f.list(t); len(s.Leases) != 1 || !s.Leases[0].ExpiresAt.Equal(f.at(25*time.Second)) {
				t.Fatalf("after ErrTooOld: %+v, want the lease live until %v", s.Leases, f.at(25*time.Second))
			}
			f.advance(time.Nanosecond)
			f.wantLeases(t, 0)
			f.obs.want(t, 1, 0, 1, 0)
		}},
		{"ReacquireLive", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			w := f.wait(t, "w", 1)
			f.advance(5 * time.Second)
			b, err := f.m.Acquire(f.ctx, lease.AcquireRequest{Holder: "a", Token: a.Token})
			if err != nil {
				t.Fatalf("re-acquire on a full pool with a waiter: %v", err)
			}
			if b.Token != a.Token || b.Handle != a.Handle || !b.AcquiredAt.Equal(f.start) || !b.ExpiresAt.Equal(f.at(15*time.Second)) {
				t.Errorf("re-acquire returned %+v, want the same lease renewed to %v", b, f.at(15*time.Second))
			}
			f.notServed(t, w)
			f.obs.want(t, 1, 0, 0, 0) // a renewal is not a grant
			f.advance(ttl)
			f.served(t, w, "w")
		}},
		{"ReacquireTooOldYieldsToWaiter", lease.Config{Capacity: 1, TTL: ttl, MaxAge: 12 * time.Second}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			w := f.wait(t, "w", 1)
			f.advance(5 * time.Second) // 5+10 > 12
			_, err := f.m.Acquire(f.ctx, lease.AcquireRequest{Holder: "a", Token: a.Token})
			// The old lease ends and its slot goes to the waiter queued before;
			// the waiter's new lease expires one TTL from now.
			var e *lease.ExhaustedError
			if !errors.As(err, &e) || e.RetryAfter != ttl {
				t.Fatalf("too-old re-acquire with a waiter queued: %v, want refused with RetryAfter %v", err, ttl)
			}
			f.served(t, w, "w")
			f.wantNotFound(t, a.Token)
			f.obs.want(t, 2, 1, 0, 1)
		}},
		{"ReacquireTooOldGetsNewLease", lease.Config{Capacity: 1, TTL: ttl, MaxAge: 12 * time.Second}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			f.advance(5 * time.Second)
			b, err := f.m.Acquire(f.ctx, lease.AcquireRequest{Holder: "a", Token: a.Token})
			if err != nil {
				t.Fatalf("too-old re-acquire: %v", err)
			}
			if b.Token == a.Token || b.Handle == a.Handle || !b.AcquiredAt.Equal(f.at(5*time.Second)) {
				t.Errorf("too-old re-acquire returned %+v, want a new lease from %v", b, f.at(5*time.Second))
			}
			f.wantNotFound(t, a.Token)
			f.wantLeases(t, 1)
		}},
		{"FIFOThreeWaiters", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			f.acquire(t, "holder")
			w1 := f.wait(t, "w1", 1)
			w2 := f.wait(t, "w2", 2)
			w3 := f.wait(t, "w3", 3)
			f.refused(t, ttl)
			f.advance(ttl) // holder expires: w1's turn
			l1 := f.served(t, w1, "w1")
			f.notServed(t, w2)
			f.notServed(t, w3)
			f.refused(t, ttl)
			if err := f.m.Release(f.ctx, l1.Token); err != nil {
				t.Fatal(err)
			}
			l2 := f.served(t, w2, "w2")
			f.notServed(t, w3)
			if err := f.m.Revoke(f.ctx, l2.Handle); err != nil {
				t.Fatal(err)
			}
			f.served(t, w3, "w3")
			if s := f.list(t); s.Waiting != 0 || len(s.Leases) != 1 {
				t.Errorf("after serving: %+v", s)
			}
		}},
		{"Capacity1", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			f.acquire(t, "a")
			f.advance(3 * time.Second)
			f.refused(t, 7*time.Second)
			f.obs.want(t, 1, 1, 0, 0)
		}},
		{"Capacity5", lease.Config{Capacity: 5, TTL: ttl}, func(t *testing.T, f *fixture) {
			var held []lease.Lease
			for range 5 {
				held = append(held, f.acquire(t, "h"))
				f.advance(time.Second)
			}
			f.refused(t, 5*time.Second) // the first expires at 10 s; now is 5 s
			if err := f.m.Release(f.ctx, held[2].Token); err != nil {
				t.Fatal(err)
			}
			f.acquire(t, "h")
			f.refused(t, 5*time.Second)
			f.wantLeases(t, 5)
			f.advance(5 * time.Second) // the first expires
			f.acquire(t, "h")
			f.refused(t, time.Second)
		}},
		{"PinnedSurvivesPastTTL", lease.Config{Capacity: 1, TTL: ttl, MaxAge: time.Hour}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			p, unpin := f.pin(t, a.Token)
			if !p.Pinned {
				t.Errorf("Pin returned an unpinned lease")
			}
			f.advance(25 * time.Second)
			if s := f.list(t); len(s.Leases) != 1 || !s.Leases[0].Pinned {
				t.Fatalf("pinned lease past TTL: %+v", s.Leases)
			}
			f.refused(t, ttl) // nothing unpinned to wait for: one TTL
			if _, err := f.m.Pin(f.ctx, a.Token); !errors.Is(err, lease.ErrBusy) {
				t.Errorf("second Pin: %v, want ErrBusy", err)
			}
			f.obs.want(t, 1, 1, 0, 0)
			unpin()
			if s := f.list(t); len(s.Leases) != 1 || s.Leases[0].Pinned || !s.Leases[0].ExpiresAt.Equal(f.at(35*time.Second)) {
				t.Fatalf("after unpin: %+v, want unpinned, expiring at %v", s.Leases, f.at(35*time.Second))
			}
			f.advance(ttl)
			f.wantLeases(t, 0)
			f.obs.want(t, 1, 1, 1, 0)
		}},
		{"UnpinAfterMaxAgeEnds", lease.Config{Capacity: 1, TTL: ttl, MaxAge: 30 * time.Second}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			_, unpin := f.pin(t, a.Token)
			w := f.wait(t, "w", 1)
			f.advance(31 * time.Second)
			f.notServed(t, w)
			f.wantLeases(t, 1)
			unpin()
			f.served(t, w, "w")
			f.wantNotFound(t, a.Token)
			f.obs.want(t, 2, 0, 1, 0)
		}},
		{"UnpinCappedAtMaxAge", lease.Config{Capacity: 1, TTL: ttl, MaxAge: 30 * time.Second}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			_, unpin := f.pin(t, a.Token)
			f.advance(25 * time.Second)
			unpin()
			if s := f.list(t); len(s.Leases) != 1 || !s.Leases[0].ExpiresAt.Equal(f.at(30*time.Second)) {
				t.Fatalf("after unpin near max age: %+v, want expiry capped at %v", s.Leases, f.at(30*time.Second))
			}
			f.advance(5 * time.Second)
			f.wantLeases(t, 0)
		}},
		{"StaleUnpinIgnored", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			_, unpin1 := f.pin(t, a.Token)
			unpin1()
			_, unpin2 := f.pin(t, a.Token)
			unpin1() // from the earlier pin: must not end the current one
			f.advance(2 * ttl)
			if s := f.list(t); len(s.Leases) != 1 || !s.Leases[0].Pinned {
				t.Fatalf("stale unpin ended a later pin: %+v", s.Leases)
			}
			unpin2()
			unpin2()
			f.wantLeases(t, 1)
		}},
		{"RevokePinned", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			_, unpin := f.pin(t, a.Token)
			if err := f.m.Revoke(f.ctx, a.Handle); err != nil {
				t.Fatalf("Revoke of a pinned lease: %v", err)
			}
			// The slot stays with the render until it unpins.
			f.refused(t, ttl)
			if s := f.list(t); len(s.Leases) != 0 || s.Ending != 1 {
				t.Fatalf("revoked lease under its render: %+v, want none listed and one ending", s)
			}
			unpin()
			b := f.acquire(t, "b")
			if s := f.list(t); len(s.Leases) != 1 || s.Leases[0].Handle != b.Handle || s.Leases[0].Pinned {
				t.Fatalf("after unpinning a revoked lease: %+v", s.Leases)
			}
			f.obs.want(t, 2, 1, 0, 1)
		}},
		{"ObserverCounts", lease.Config{Capacity: 2, TTL: ttl}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			b := f.acquire(t, "b")
			f.refused(t, ttl)
			if _, err := f.m.Acquire(f.ctx, lease.AcquireRequest{Holder: "a", Token: a.Token}); err != nil { // renewal
				t.Fatal(err)
			}
			if err := f.m.Release(f.ctx, a.Token); err != nil {
				t.Fatal(err)
			}
			if err := f.m.Revoke(f.ctx, b.Handle); err != nil {
				t.Fatal(err)
			}
			f.obs.want(t, 2, 1, 0, 2)
			f.acquire(t, "c")
			f.acquire(t, "d")
			w := f.wait(t, "w", 1)
			f.advance(ttl) // c and d expire; w gets one slot
			f.served(t, w, "w")
			f.list(t)
			f.advance(ttl) // w's lease expires
			f.list(t)
			f.advance(time.Hour)
			f.obs.want(t, 5, 1, 3, 2)
		}},
		{"WaiterCanceled", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			f.acquire(t, "a")
			ctx, cancel := context.WithCancel(f.ctx)
			w := f.waitCtx(t, ctx, "w", 1)
			cancel()
			if res := <-w; !errors.Is(res.err, context.Canceled) {
				t.Fatalf("canceled waiter: %v, want context.Canceled", res.err)
			}
			if s := f.list(t); s.Waiting != 0 {
				t.Fatalf("canceled waiter still queued: %+v", s)
			}
			f.advance(ttl)
			f.wantLeases(t, 0) // nobody was served the freed slot
			f.obs.want(t, 1, 0, 1, 0)
		}},
		{"AcquireWithDoneContext", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			ctx, cancel := context.WithCancel(f.ctx)
			cancel()
			if _, err := f.m.Acquire(ctx, lease.AcquireRequest{Holder: "a"}); !errors.Is(err, context.Canceled) {
				t.Fatalf("Acquire with a canceled context: %v", err)
			}
			f.wantLeases(t, 0)
		}},
		{"Close", lease.Config{Capacity: 1, TTL: ttl}, func(t *testing.T, f *fixture) {
			a := f.acquire(t, "a")
			w := f.wait(t, "w", 1)
			if err := f.m.Close(); err != nil {
				t.Fatal(err)
			}
			if res := <-w; !errors.Is(res.err, lease.ErrClosed) {
				t.Fatalf("waiter at Close: %v, want ErrClosed", res.err)
			}
			f.advance(time.Hour) // the stopped timer must not fire
			if _, err := f.m.Renew(f.ctx, a.Token); !errors.Is(err, lease.ErrClosed) {
				t.Errorf("Renew after Close: %v, want ErrClosed", err)
			}
			if _, err := f.m.Acquire(f.ctx, lease.AcquireRequest{Holder: "b", Wait: true}); !errors.Is(err, lease.ErrClosed) {
				t.Errorf("Acquire after Close: %v, want ErrClosed", err)
			}
			if err := f.m.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			f.obs.want(t, 1, 0, 0, 0)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				obs := &counter{}
				cfg := tc.cfg
				cfg.Observer = obs
				f := &fixture{m: lease.NewMemory(cfg), obs: obs, ctx: t.Context(), start: time.Now()}
				t.Cleanup(func() { _ = f.m.Close() })
				tc.run(t, f)
			})
		})
	}
}

// TestAbandonedWaitersDoNotLeakSlots races waiters' deadlines against
// releases, so that some slots are handed to a waiter just as it gives up.
// When everyone has finished and released, no lease may be left: a slot
// granted to a waiter that then returned an error would still be held.
func TestAbandonedWaitersDoNotLeakSlots(t *testing.T) {
	m := lease.NewMemory(lease.Config{Capacity: 2, TTL: time.Hour})
	defer m.Close()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 50 {
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(rand.IntN(300))*time.Microsecond)
				l, err := m.Acquire(ctx, lease.AcquireRequest{Holder: "h", Wait: true})
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Acquire: %v", err)
					}
					continue
				}
				if err := m.Release(t.Context(), l.Token); err != nil {
					t.Errorf("Release: %v", err)
				}
			}
		})
	}
	wg.Wait()
	s, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Leases) != 0 || s.Waiting != 0 {
		t.Fatalf("after all callers finished: %d leases, %d waiting; want none", len(s.Leases), s.Waiting)
	}
}

func TestValidToken(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"0123456789abcdef0123456789abcdef", true},
		{"00000000000000000000000000000000", true},
		{"0123456789ABCDEF0123456789abcdef", false},
		{"0123456789abcdef0123456789abcde", false},
		{"0123456789abcdef0123456789abcdef0", false},
		{"0123456789abcdeg0123456789abcdef", false},
		{"", false},
		{"0123456789abcdef 123456789abcdef", false},
	} {
		if got := lease.ValidToken(tc.s); got != tc.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
	m := lease.NewMemory(lease.Config{})
	defer m.Close()
	l, err := m.Acquire(t.Context(), lease.AcquireRequest{Holder: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if !lease.ValidToken(l.Token) || len(l.Handle) != 16 {
		t.Errorf("granted token %q, handle %q: want 32 and 16 lowercase hex digits", l.Token, l.Handle)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	m := lease.NewMemory(lease.Config{Capacity: 5})
	defer m.Close()
	ctx := context.Background()
	for b.Loop() {
		l, err := m.Acquire(ctx, lease.AcquireRequest{Holder: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Release(ctx, l.Token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	m := lease.NewMemory(lease.Config{Capacity: 1 << 16})
	defer m.Close()
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l, err := m.Acquire(ctx, lease.AcquireRequest{Holder: "bench"})
			if err != nil {
				b.Error(err)
				return
			}
			if err := m.Release(ctx, l.Token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fixture is one timing test's registry, in its own synctest bubble.
type fixture struct {
	m     *lease.Memory
	obs   *counter
	ctx   context.Context
	start time.Time
}

// at is the bubble's time d after the fixture was made.
func (f *fixture) at(d time.Duration) time.Time { return f.start.Add(d) }

// advance moves the bubble's clock by d, running every expiry that falls
// due on the way, and returns once everything they woke has settled.
func (f *fixture) advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

type result struct {
	lease lease.Lease
	err   error
}

func (f *fixture) acquire(t *testing.T, holder string) lease.Lease {
	t.Helper()
	l, err := f.m.Acquire(f.ctx, lease.AcquireRequest{Holder: holder})
	if err != nil {
		t.Fatalf("Acquire(%q): %v", holder, err)
	}
	if !l.AcquiredAt.Equal(time.Now()) || l.Holder != holder {
		t.Fatalf("Acquire(%q) = %+v, want acquired now by %q", holder, l, holder)
	}
	return l
}

// wait starts a waiting Acquire and returns once it is the n-th in the queue.
func (f *fixture) wait(t *testing.T, holder string, n int) <-chan result {
	t.Helper()
	return f.waitCtx(t, f.ctx, holder, n)
}

func (f *fixture) waitCtx(t *testing.T, ctx context.Context, holder string, n int) <-chan result {
	t.Helper()
	ch := make(chan result, 1)
	go func() {
		l, err := f.m.Acquire(ctx, lease.AcquireRequest{Holder: holder, Wait: true})
		ch <- result{l, err}
	}()
	synctest.Wait() // the goroutine has queued, or returned
	if got := f.list(t).Waiting; got != n {
		t.Fatalf("%q queued: %d waiting, want %d", holder, got, n)
	}
	return ch
}

// served expects w to have been granted a lease by now: once the bubble
// has settled, a served waiter has returned.
func (f *fixture) served(t *testing.T, w <-chan result, holder string) lease.Lease {
	t.Helper()
	synctest.Wait()
	select {
	case res := <-w:
		if res.err != nil {
			t.Fatalf("waiter %q: %v", holder, res.err)
		}
		if res.lease.Holder != holder || !lease.ValidToken(res.lease.Token) {
			t.Fatalf("waiter %q got %+v", holder, res.lease)
		}
		return res.lease
	default:
		t.Fatalf("waiter %q not served", holder)
	}
	panic("unreachable")
}

// notServed expects w still to be blocked once the bubble has settled. It
// calls nothing on the registry, so it cannot itself cause an expiry.
func (f *fixture) notServed(t *testing.T, w <-chan result) {
	t.Helper()
	synctest.Wait()
	select {
	case res := <-w:
		t.Fatalf("waiter returned too early: %+v, %v", res.lease, res.err)
	default:
	}
}

func (f *fixture) renew(t *testing.T, token string, wantExpiry time.Time) {
	t.Helper()
	l, err := f.m.Renew(f.ctx, token)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if !l.ExpiresAt.Equal(wantExpiry) || l.Token != token {
		t.Fatalf("Renew: expiry %v, want %v", l.ExpiresAt, wantExpiry)
	}
}

func (f *fixture) pin(t *testing.T, token string) (lease.Lease, func()) {
	t.Helper()
	p, err := f.m.Pin(f.ctx, token)
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	return p.Lease(), p.Unpin
}

func (f *fixture) refused(t *testing.T, retry time.Duration) {
	t.Helper()
	_, err := f.m.Acquire(f.ctx, lease.AcquireRequest{Holder: "newcomer"})
	var e *lease.ExhaustedError
	if !errors.As(err, &e) {
		t.Fatalf("Acquire on a full pool: %v, want *ExhaustedError", err)
	}
	if e.RetryAfter != retry {
		t.Fatalf("RetryAfter = %v, want %v", e.RetryAfter, retry)
	}
}

func (f *fixture) wantNotFound(t *testing.T, token string) {
	t.Helper()
	if _, err := f.m.Renew(f.ctx, token); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Renew: %v, want ErrNotFound", err)
	}
}

func (f *fixture) list(t *testing.T) lease.Snapshot {
	t.Helper()
	s, err := f.m.List(f.ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return s
}

func (f *fixture) wantLeases(t *testing.T, n int) {
	t.Helper()
	if got := len(f.list(t).Leases); got != n {
		t.Fatalf("%d leases at +%v, want %d", got, time.Since(f.start), n)
	}
}

// counter is an Observer that counts.
type counter struct{ granted, refused, expired, released atomic.Int64 }

func (c *counter) Granted()  { c.granted.Add(1) }
func (c *counter) Refused()  { c.refused.Add(1) }
func (c *counter) Expired()  { c.expired.Add(1) }
func (c *counter) Released() { c.released.Add(1) }

func (c *counter) want(t *testing.T, granted, refused, expired, released int64) {
	t.Helper()
	got := fmt.Sprint(c.granted.Load(), c.refused.Load(), c.expired.Load(), c.released.Load())
	if want := fmt.Sprint(granted, refused, expired, released); got != want {
		t.Errorf("observer counts (granted refused expired released) = %s, want %s", got, want)
	}
}
