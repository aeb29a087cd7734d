package etcdtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/lease/etcdlease"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// TestLeaseEndsUnderPinAcrossReplicas: a lease pinned on replica a and
// released or revoked on replica b ends under a's pin (Lost, with the
// reason), and its slot goes to b's waiter only once a unpins.
func TestLeaseEndsUnderPinAcrossReplicas(t *testing.T) {
	t.Parallel()
	endpoint := startEtcd(t)
	for _, tc := range []struct {
		name   string
		reason error
		end    func(b *etcdlease.Registry, l lease.Lease) error
	}{
		{"release", lease.ErrReleased, func(b *etcdlease.Registry, l lease.Lease) error { return b.Release(context.Background(), l.Token) }},
		{"revoke", lease.ErrRevoked, func(b *etcdlease.Registry, l lease.Lease) error { return b.Revoke(context.Background(), l.Handle) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			a, b, _ := twoReplicas(t, endpoint, lease.Config{Capacity: 1, TTL: time.Minute})
			l, err := a.Acquire(ctx, lease.AcquireRequest{Holder: "h"})
			if err != nil {
				t.Fatal(err)
			}
			p, err := a.Pin(ctx, l.Token)
			if err != nil {
				t.Fatal(err)
			}
			waiter := make(chan error, 1)
			go func() {
				_, err := b.Acquire(ctx, lease.AcquireRequest{Holder: "next", Wait: true})
				waiter <- err
			}()
			waitFor(t, 10*time.Second, "b's waiter to queue", func() bool {
				s, err := b.List(ctx)
				return err == nil && s.Waiting == 1
			})
			if err := tc.end(b, l); err != nil {
				t.Fatalf("ending the lease on b: %v", err)
			}
			select {
			case <-p.Lost():
			case <-time.After(10 * time.Second):
				t.Fatal("a's pin not told the lease ended")
			}
			if !errors.Is(p.Err(), tc.reason) {
				t.Errorf("Pin.Err() = %v, want %v", p.Err(), tc.reason)
			}
			if _, err := b.Renew(ctx, l.Token); !errors.Is(err, lease.ErrNotFound) {
				t.Errorf("Renew of the ended lease on b: %v, want ErrNotFound", err)
			}
			select {
			case err := <-waiter:
				t.Fatalf("b's waiter served (%v) while a still pinned the ended lease", err)
			case <-time.After(time.Second):
			}
			p.Unpin()
			select {
			case err := <-waiter:
				if err != nil {
					t.Fatalf("b's waiter after a unpinned: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("b's waiter not served after a unpinned")
			}
		})
	}
}

// TestPinFencedWhenEtcdUnreachable: replica a loses its connection to etcd
// while it pins a lease. Its pin is lost with ErrFenced before etcd could
// expire the lease: when a learns it, replica b still sees the lease held,
// and only later can b take the slot.
func TestPinFencedWhenEtcdUnreachable(t *testing.T) {
	t.Parallel()
	endpoint := startEtcd(t)
	proxy := testserver.StartCutProxy(t, strings.TrimPrefix(endpoint, "http://"), -1)
	prefix := uniquePrefix(t)
	cfg := lease.Config{Capacity: 1, TTL: 6 * time.Second}
	a := newRegistry(t, newClient(t, "http://"+proxy.Addr()), cfg, prefix)
	b := newRegistry(t, newClient(t, endpoint), cfg, prefix)
	ctx := t.Context()
	l, err := a.Acquire(ctx, lease.AcquireRequest{Holder: "h"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Pin(ctx, l.Token)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Sever()
	select {
	case <-p.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("pin not fenced after its replica lost etcd")
	}
	if !errors.Is(p.Err(), lease.ErrFenced) {
		t.Fatalf("Pin.Err() = %v, want ErrFenced", p.Err())
	}
	s, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Leases) != 1 || s.Leases[0].Handle != l.Handle {
		t.Fatalf("when a fenced its pin, b saw %+v: the slot was already free", s.Leases)
	}
	p.Unpin() // etcd still unreachable from a: the lease ends by its TTL
	waitFor(t, 30*time.Second, "b to take the slot once the lease expired", func() bool {
		_, err := b.Acquire(ctx, lease.AcquireRequest{Holder: "next"})
		return err == nil
	})
}
