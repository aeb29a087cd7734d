package leasetest

import (
	"errors"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/lease"
)

// testReleasePinned releases a lease under its pin: the lease is gone for
// every caller at once, the pin learns why, and the slot is handed on only
// once the pin is unpinned.
func testReleasePinned(t *testing.T, r lease.Registry, cfg lease.Config) {
	a := mustAcquire(t, r, "h")
	endPinned(t, r, cfg, a, lease.ErrReleased, func() error { return r.Release(t.Context(), a.Token) })
}

func testRevokePinned(t *testing.T, r lease.Registry, cfg lease.Config) {
	a := mustAcquire(t, r, "h")
	endPinned(t, r, cfg, a, lease.ErrRevoked, func() error { return r.Revoke(t.Context(), a.Handle) })
}

func endPinned(t *testing.T, r lease.Registry, cfg lease.Config, a lease.Lease, reason error, end func() error) {
	ctx := t.Context()
	p, err := r.Pin(ctx, a.Token)
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	waiter := acquireAsync(ctx, r, "waiter")
	waitForWaiting(t, r, 1)
	if err := end(); err != nil {
		t.Fatalf("ending a pinned lease: %v", err)
	}
	select {
	case <-p.Lost():
	case <-time.After(prompt):
		t.Fatalf("pin not told within %v that its lease ended", prompt)
	}
	if !errors.Is(p.Err(), reason) {
		t.Errorf("Pin.Err() = %v, want %v", p.Err(), reason)
	}
	if _, err := r.Renew(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Renew of an ended lease: %v, want ErrNotFound", err)
	}
	if err := r.Release(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("second Release: %v, want ErrNotFound", err)
	}
	if _, err := r.Pin(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Pin of an ended lease: %v, want ErrNotFound", err)
	}
	// The slot stays with the stopping render: nobody is served yet.
	select {
	case res := <-waiter:
		t.Fatalf("waiter served (%+v, %v) while the ended lease was still pinned", res.lease, res.err)
	case <-time.After(cfg.TTL / 60):
	}
	wantRefused(t, r, cfg)
	p.Unpin()
	p.Unpin() // idempotent
	select {
	case res := <-waiter:
		if res.err != nil {
			t.Fatalf("waiter after unpin: %v", res.err)
		}
	case <-time.After(prompt):
		t.Fatalf("waiter not served within %v of the unpin", prompt)
	}
}

// testRequestID repeats acquires with one request id: one lease, one slot.
func testRequestID(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	req := lease.AcquireRequest{Holder: "h", RequestID: "3f6c1c52-8c1e-4bb5-9a4e-0d7e7c2b8a11"}
	first, err := r.Acquire(ctx, req)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	for i := range 3 {
		again, err := r.Acquire(ctx, req)
		if err != nil || again.Token != first.Token || again.Handle != first.Handle {
			t.Fatalf("repeat %d: %+v, %v; want the same lease %s", i, again, err, first.Handle)
		}
	}
	wantLeases(t, r, 1)
	// Another holder with the same request id is another request.
	other, err := r.Acquire(ctx, lease.AcquireRequest{Holder: "g", RequestID: req.RequestID})
	if err != nil || other.Token == first.Token {
		t.Fatalf("other holder, same request id: %+v, %v; want a lease of its own", other, err)
	}
	wantRefused(t, r, cfg)
	// Once the lease has ended, the request id asks for a new one.
	mustRelease(t, r, first.Token)
	next, err := r.Acquire(ctx, req)
	if err != nil || next.Token == first.Token {
		t.Fatalf("request id after release: %+v, %v; want a new lease", next, err)
	}
}

// testWaitLineBounded fills the wait line: the next waiting acquire is
// refused at once, saying the line is full.
func testWaitLineBounded(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	mustAcquire(t, r, "holder")
	for range cfg.MaxWaiting {
		acquireAsync(ctx, r, "waiter")
	}
	waitForWaiting(t, r, cfg.MaxWaiting)
	_, err := r.Acquire(ctx, lease.AcquireRequest{Holder: "late", Wait: true})
	var e *lease.ExhaustedError
	if !errors.As(err, &e) || !e.Queue || e.MaxWaiting != cfg.MaxWaiting {
		t.Fatalf("waiting Acquire on a full line: %v (%+v), want an ExhaustedError with Queue set", err, e)
	}
}
