package etcdtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/lease/etcdlease"
)

// twoReplicas returns two Registries on one prefix, each with its own etcd
// client, as two whirl processes would have.
func twoReplicas(t *testing.T, endpoint string, cfg lease.Config, opts ...etcdlease.Option) (*etcdlease.Registry, *etcdlease.Registry, string) {
	t.Helper()
	prefix := uniquePrefix(t)
	a := newRegistry(t, newClient(t, endpoint), cfg, prefix, opts...)
	b := newRegistry(t, newClient(t, endpoint), cfg, prefix, opts...)
	return a, b, prefix
}

// TestManyReplicasExactCapacity: 20 replicas, each allowing Capacity
// concurrent attempts, so 60 admission transactions race for 3 slots.
func TestManyReplicasExactCapacity(t *testing.T) {
	endpoint := startEtcd(t)
	const capacity, replicas, callers = 3, 20, 200
	cfg := lease.Config{Capacity: capacity, TTL: time.Minute}
	prefix := uniquePrefix(t)
	clients := []*clientv3.Client{newClient(t, endpoint), newClient(t, endpoint)}
	var regs []*etcdlease.Registry
	for i := range replicas {
		regs = append(regs, newRegistry(t, clients[i%2], cfg, prefix, etcdlease.WithOpTimeout(30*time.Second)))
	}
	var granted atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			_, err := regs[i%replicas].Acquire(t.Context(), lease.AcquireRequest{Holder: "storm"})
			switch {
			case err == nil:
				granted.Add(1)
			case !errors.Is(err, lease.ErrExhausted):
				t.Errorf("Acquire: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if granted.Load() != capacity {
		t.Fatalf("granted %d, want exactly %d", granted.Load(), capacity)
	}
}

// TestConcurrentAcquiresTwoReplicas runs alone (not parallel): 500 callers
// spread over two replicas get exactly Capacity leases.
func TestConcurrentAcquiresTwoReplicas(t *testing.T) {
	endpoint := startEtcd(t)
	const capacity, callers = 7, 500
	// A long op timeout: 500 callers on 2 cores with -race must not be
	// refused for slowness, or the count would be short.
	a, b, _ := twoReplicas(t, endpoint, lease.Config{Capacity: capacity, TTL: time.Minute}, etcdlease.WithOpTimeout(30*time.Second))
	var granted, exhausted atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		r := a
		if i%2 == 1 {
			r = b
		}
		wg.Go(func() {
			<-start
			_, err := r.Acquire(t.Context(), lease.AcquireRequest{Holder: "storm"})
			switch {
			case err == nil:
				granted.Add(1)
			case errors.Is(err, lease.ErrExhausted):
				exhausted.Add(1)
			default:
				t.Errorf("Acquire: %v", err)
			}
		})
	}
	begin := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d acquires over 2 replicas in %v: %d granted, %d exhausted", callers, time.Since(begin), granted.Load(), exhausted.Load())
	if granted.Load() != capacity {
		t.Fatalf("granted %d, want exactly %d", granted.Load(), capacity)
	}
	for _, r := range []*etcdlease.Registry{a, b} {
		s, err := r.List(t.Context())
		if err != nil || len(s.Leases) != capacity {
			t.Fatalf("List: %d leases, %v; want %d", len(s.Leases), err, capacity)
		}
	}
}

func TestReplicas(t *testing.T) {
	t.Parallel()
	endpoint := startEtcd(t)
	t.Run("RenewPinReleaseOnOtherReplica", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b, _ := twoReplicas(t, endpoint, lease.Config{Capacity: 2, TTL: time.Minute})
		l, err := a.Acquire(ctx, lease.AcquireRequest{Holder: "h"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := b.Renew(ctx, l.Token)
		if err != nil || r.Handle != l.Handle || !r.AcquiredAt.Equal(l.AcquiredAt) {
			t.Fatalf("Renew on the other replica: %+v, %v", r, err)
		}
		// Re-acquire with a live token on the other replica renews it.
		if r, err = b.Acquire(ctx, lease.AcquireRequest{Holder: "h", Token: l.Token}); err != nil || r.Handle != l.Handle {
			t.Fatalf("re-Acquire on the other replica: %+v, %v", r, err)
		}
		// A pin on one replica makes a second pin on the other busy.
		p, err := a.Pin(ctx, l.Token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Pin(ctx, l.Token); !errors.Is(err, lease.ErrBusy) {
			t.Fatalf("Pin on the other replica: %v, want ErrBusy", err)
		}
		s, err := b.List(ctx)
		if err != nil || len(s.Leases) != 1 || !s.Leases[0].Pinned || s.Leases[0].Token != "" {
			t.Fatalf("List on the other replica: %+v, %v", s, err)
		}
		p.Unpin()
		p, err = b.Pin(ctx, l.Token)
		if err != nil {
			t.Fatalf("Pin on the other replica after unpin: %v", err)
		}
		p.Unpin()
		if err := b.Release(ctx, l.Token); err != nil {
			t.Fatalf("Release on the other replica: %v", err)
		}
		if _, err := a.Renew(ctx, l.Token); !errors.Is(err, lease.ErrNotFound) {
			t.Fatalf("Renew after release elsewhere: %v, want ErrNotFound", err)
		}
		// Revoke by handle across replicas.
		l2, err := b.Acquire(ctx, lease.AcquireRequest{Holder: "h2"})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Revoke(ctx, l2.Handle); err != nil {
			t.Fatalf("Revoke on the other replica: %v", err)
		}
		if err := b.Release(ctx, l2.Token); !errors.Is(err, lease.ErrNotFound) {
			t.Fatalf("Release after revoke elsewhere: %v, want ErrNotFound", err)
		}
	})

	t.Run("RestartSeesLeases", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		cfg := lease.Config{Capacity: 2, TTL: time.Minute}
		prefix := uniquePrefix(t)
		old := newRegistry(t, newClient(t, endpoint), cfg, prefix)
		l1, err1 := old.Acquire(ctx, lease.AcquireRequest{Holder: "one"})
		l2, err2 := old.Acquire(ctx, lease.AcquireRequest{Holder: "two"})
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		old.Close()

		fresh := newRegistry(t, newClient(t, endpoint), cfg, prefix)
		s, err := fresh.List(ctx)
		if err != nil || len(s.Leases) != 2 || s.Leases[0].Handle != l1.Handle || s.Leases[1].Handle != l2.Handle {
			t.Fatalf("List after restart: %+v, %v; want both leases, oldest first", s, err)
		}
		if _, err := fresh.Acquire(ctx, lease.AcquireRequest{Holder: "three"}); !errors.Is(err, lease.ErrExhausted) {
			t.Fatalf("Acquire over capacity after restart: %v, want ErrExhausted", err)
		}
		if _, err := fresh.Renew(ctx, l1.Token); err != nil {
			t.Fatalf("Renew after restart: %v", err)
		}
		// A replica with another capacity on the same pool is refused.
		_, err = etcdlease.New(ctx, newClient(t, endpoint), lease.Config{Capacity: 3}, prefix)
		if !errors.Is(err, etcdlease.ErrConfigMismatch) {
			t.Fatalf("New with another capacity: %v, want ErrConfigMismatch", err)
		}
	})

	t.Run("FIFOAcrossReplicas", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		a, b, _ := twoReplicas(t, endpoint, lease.Config{Capacity: 1, TTL: time.Minute})
		h, err := a.Acquire(ctx, lease.AcquireRequest{Holder: "holder"})
		if err != nil {
			t.Fatal(err)
		}
		type res struct {
			l   lease.Lease
			err error
		}
		names := []string{"w0", "w1", "w2", "w3"}
		out := make([]chan res, len(names))
		for i, name := range names {
			r := []*etcdlease.Registry{a, b}[i%2]
			out[i] = make(chan res, 1)
			go func() {
				l, err := r.Acquire(ctx, lease.AcquireRequest{Holder: name, Wait: true})
				out[i] <- res{l, err}
			}()
			// Wait until this waiter is queued before starting the next.
			want := i/2 + 1
			waitFor(t, 3*time.Second, "waiter "+name+" to queue", func() bool {
				s, err := r.List(ctx)
				return err == nil && s.Waiting == want
			})
		}
		token := h.Token
		for i, name := range names {
			// Non-waiting newcomers on either replica are refused while
			// anyone waits.
			if _, err := b.Acquire(ctx, lease.AcquireRequest{Holder: "newcomer"}); !errors.Is(err, lease.ErrExhausted) {
				t.Fatalf("newcomer while waiters queue: %v, want ErrExhausted", err)
			}
			if err := []*etcdlease.Registry{b, a}[i%2].Release(ctx, token); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-out[i]:
				if r.err != nil || r.l.Holder != name {
					t.Fatalf("waiter %s got %+v, %v", name, r.l, r.err)
				}
				token = r.l.Token
			case <-time.After(3 * time.Second):
				t.Fatalf("waiter %s not served within 3s of a release", name)
			}
		}
	})

	t.Run("CrashedReplicaWaitersVanish", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		const ghostTTL = 4 * time.Second
		cfg := lease.Config{Capacity: 1, TTL: time.Minute}
		prefix := uniquePrefix(t)
		live := newRegistry(t, newClient(t, endpoint), cfg, prefix)
		h, err := live.Acquire(ctx, lease.AcquireRequest{Holder: "holder"})
		if err != nil {
			t.Fatal(err)
		}
		// The "crashing" replica queues a waiter, then its etcd client dies
		// without Close (no revoke of its session).
		crashCli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: silent})
		if err != nil {
			t.Fatal(err)
		}
		crashed, err := etcdlease.New(ctx, crashCli, cfg, prefix, etcdlease.WithSessionTTL(ghostTTL))
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		waitDone := make(chan error, 1)
		go func() {
			_, err := crashed.Acquire(wctx, lease.AcquireRequest{Holder: "ghost", Wait: true})
			waitDone <- err
		}()
		waitFor(t, 3*time.Second, "the ghost to queue", func() bool {
			s, err := crashed.List(ctx)
			return err == nil && s.Waiting == 1
		})
		crashCli.Close() // waiter key stays behind with the session lease
		crashedAt := time.Now()
		t.Cleanup(func() {
			wcancel()
			<-waitDone
			crashed.Close()
		})

		if err := live.Release(ctx, h.Token); err != nil {
			t.Fatal(err)
		}
		// Until the session lease expires the ghost holds the queue...
		_, err = live.Acquire(ctx, lease.AcquireRequest{Holder: "newcomer"})
		if since := time.Since(crashedAt); !errors.Is(err, lease.ErrExhausted) && since < ghostTTL-500*time.Millisecond {
			t.Fatalf("newcomer %v after the crash, behind a ghost waiter: %v, want ErrExhausted", since, err)
		} else if err == nil {
			t.Skipf("too slow to observe the ghost (%v after the crash)", since)
		}
		// ...then its key vanishes and a waiting caller here is served.
		wc, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := live.Acquire(wc, lease.AcquireRequest{Holder: "patient", Wait: true}); err != nil {
			t.Fatalf("waiter after the ghost's session expired: %v", err)
		}
		t.Logf("ghost waiter held the queue for %v", time.Since(crashedAt))
	})
}

// waitFor polls cond every 5 ms until it holds, failing after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
