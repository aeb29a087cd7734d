package etcdtest

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/lease/etcdlease"
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
	proxy := startSeverableProxy(t, endpoint)
	prefix := uniquePrefix(t)
	cfg := lease.Config{Capacity: 1, TTL: 6 * time.Second}
	a := newRegistry(t, newClient(t, "http://"+proxy.addr()), cfg, prefix)
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
	proxy.sever()
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

// severableProxy forwards TCP to an etcd endpoint until sever, which closes
// every connection and refuses new ones: a replica cut off from etcd.
type severableProxy struct {
	lis    net.Listener
	target string

	mu      sync.Mutex
	severed bool
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startSeverableProxy(t *testing.T, endpoint string) *severableProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &severableProxy{lis: lis, target: endpoint[len("http://"):]}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = lis.Close()
		p.sever()
		p.wg.Wait()
	})
	return p
}

func (p *severableProxy) addr() string { return p.lis.Addr().String() }

func (p *severableProxy) serve() {
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		p.mu.Lock()
		if err != nil || p.severed {
			p.mu.Unlock()
			_ = in.Close()
			if out != nil {
				_ = out.Close()
			}
			continue
		}
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
		p.wg.Go(func() { _, _ = io.Copy(in, out); _ = in.Close() })
	}
}

func (p *severableProxy) sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.severed = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
