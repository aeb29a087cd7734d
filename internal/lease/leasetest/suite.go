// Package leasetest is the behavioural suite every lease.Registry must pass.
//
// It uses only the Registry interface and the time package, so a store with
// coarse, server-side expiry (etcd: TTLs of whole seconds, at least about
// 2 s, and expiry that may land up to about a second late) can run it on the
// wall clock, and a store that keeps time with the time package can run it in
// testing/synctest bubbles (RunInBubble), where its sleeps cost nothing. Time
// assertions are lopsided: a lease must never end before its expiry (checked
// strictly), but may end up to expirySlack after it.
package leasetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/whirl-dev/whirl/internal/lease"
)

const (
	// shortTTL is for subtests that watch a lease expire: etcd's minimum.
	shortTTL = 2 * time.Second
	// longTTL is for subtests in which nothing may expire.
	longTTL = time.Minute
	// expirySlack is how late an expiry may be observed.
	expirySlack = 1500 * time.Millisecond
	// prompt bounds how long an event that should be immediate (a waiter
	// served by a release) may take to be seen.
	prompt = 2 * time.Second
)

// Run runs the suite on the wall clock. newRegistry must return a new, empty
// registry for cfg that shares no leases with any other it returned: subtests
// run in parallel. The suite closes every registry it gets exactly once, so
// newRegistry need not register a Close of its own.
func Run(t *testing.T, newRegistry func(t *testing.T, cfg lease.Config) lease.Registry) {
	run(t, newRegistry, false)
}

// RunInBubble runs the suite with each subtest, newRegistry included, inside
// its own testing/synctest bubble, for a store whose only clock is the time
// package: the bubble's fake clock then drives its expiries.
func RunInBubble(t *testing.T, newRegistry func(t *testing.T, cfg lease.Config) lease.Registry) {
	run(t, newRegistry, true)
}

func run(t *testing.T, newRegistry func(t *testing.T, cfg lease.Config) lease.Registry, bubble bool) {
	tests := []struct {
		name string
		cfg  lease.Config
		// closes marks a subtest that calls Close itself.
		closes bool
		run    func(t *testing.T, r lease.Registry, cfg lease.Config)
	}{
		{name: "Capacity1Exact", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testCapacity},
		{name: "Capacity5Exact", cfg: lease.Config{Capacity: 5, TTL: longTTL}, run: testCapacity},
		{name: "RefusalCarriesRetryAfter", cfg: lease.Config{Capacity: 2, TTL: longTTL}, run: testRefusal},
		{name: "RenewPushesExpiry", cfg: lease.Config{Capacity: 1, TTL: shortTTL}, run: testRenewPushesExpiry},
		{name: "ExpiryWithoutTrafficServesWaiter", cfg: lease.Config{Capacity: 1, TTL: shortTTL}, run: testExpiry},
		{name: "ReleaseFreesSlot", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testRelease},
		{name: "UnknownAndMalformedNotFound", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testUnknown},
		{name: "ReacquireOwnLeaseRenews", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testReacquire},
		{name: "MaxAge", cfg: lease.Config{Capacity: 1, TTL: shortTTL, MaxAge: 3 * time.Second}, run: testMaxAge},
		{name: "RevokeByHandle", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testRevoke},
		{name: "PinOutlivesTTLAndMaxAge", cfg: lease.Config{Capacity: 1, TTL: shortTTL, MaxAge: shortTTL + expirySlack}, run: testPin},
		{name: "UnpinRenews", cfg: lease.Config{Capacity: 1, TTL: shortTTL}, run: testUnpinRenews},
		{name: "ListHidesTokens", cfg: lease.Config{Capacity: 5, TTL: longTTL}, run: testList},
		{name: "WaitersFIFO", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testFIFO},
		{name: "WaiterDeadline", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testWaiterDeadline},
		{name: "WaiterCanceled", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testWaiterCanceled},
		{name: "ConcurrentAcquire", cfg: lease.Config{Capacity: 5, TTL: longTTL}, run: testConcurrent},
		{name: "CloseWakesWaiters", cfg: lease.Config{Capacity: 1, TTL: longTTL}, closes: true, run: testClose},
		{name: "ReleaseUnderPinHoldsSlotUntilUnpin", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testReleasePinned},
		{name: "RevokeUnderPinHoldsSlotUntilUnpin", cfg: lease.Config{Capacity: 1, TTL: longTTL}, run: testRevokePinned},
		{name: "RequestIDIdempotent", cfg: lease.Config{Capacity: 2, TTL: longTTL}, run: testRequestID},
		{name: "WaitLineBounded", cfg: lease.Config{Capacity: 1, TTL: longTTL, MaxWaiting: 2}, run: testWaitLineBounded},
	}
	for _, tc := range tests {
		body := func(t *testing.T) {
			r := newRegistry(t, tc.cfg)
			if !tc.closes {
				t.Cleanup(func() {
					if err := r.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
			}
			tc.run(t, r, tc.cfg.WithDefaults())
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if bubble {
				synctest.Test(t, body)
				return
			}
			body(t)
		})
	}
}

func testCapacity(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	tokens, handles := map[string]bool{}, map[string]bool{}
	var held []lease.Lease
	for range cfg.Capacity {
		l := mustAcquire(t, r, "h")
		if !lease.ValidToken(l.Token) || l.Handle == "" || l.Handle == l.Token {
			t.Fatalf("lease has token %q, handle %q; want 32 lowercase hex and a distinct public handle", l.Token, l.Handle)
		}
		if tokens[l.Token] || handles[l.Handle] {
			t.Fatalf("token or handle granted twice: %+v", l)
		}
		tokens[l.Token], handles[l.Handle] = true, true
		held = append(held, l)
	}
	wantRefused(t, r, cfg)
	wantLeases(t, r, cfg.Capacity)
	mustRelease(t, r, held[0].Token)
	mustAcquire(t, r, "h")
	wantRefused(t, r, cfg)
	if _, err := r.Acquire(ctx, lease.AcquireRequest{Holder: "h", Token: randomToken()}); !errors.Is(err, lease.ErrExhausted) {
		t.Fatalf("Acquire with an unknown token on a full pool: %v, want ErrExhausted", err)
	}
}

func testRefusal(t *testing.T, r lease.Registry, cfg lease.Config) {
	for range cfg.Capacity {
		mustAcquire(t, r, "h")
	}
	for range 3 {
		wantRefused(t, r, cfg)
	}
	// A refusal leaves nothing behind: no queued waiter, no extra lease.
	s := mustList(t, r)
	if s.Waiting != 0 || len(s.Leases) != cfg.Capacity {
		t.Errorf("after refusals: %d waiting, %d leases; want 0, %d", s.Waiting, len(s.Leases), cfg.Capacity)
	}
}

func testRenewPushesExpiry(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	start := time.Now()
	a := mustAcquire(t, r, "h")
	time.Sleep(cfg.TTL/2 + 200*time.Millisecond)
	renewedAt := time.Now()
	b, err := r.Renew(ctx, a.Token)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if b.Token != a.Token || b.Handle != a.Handle || !b.AcquiredAt.Equal(a.AcquiredAt) {
		t.Errorf("Renew returned %+v, want the same lease as %+v", b, a)
	}
	if !b.ExpiresAt.After(a.ExpiresAt) || b.ExpiresAt.Before(renewedAt.Add(cfg.TTL)) {
		t.Errorf("renewed ExpiresAt %v; want at least renewal time + TTL = %v (was %v)", b.ExpiresAt, renewedAt.Add(cfg.TTL), a.ExpiresAt)
	}
	// Past the original expiry, inside the renewed one: still live.
	sleepUntil(start.Add(cfg.TTL + 300*time.Millisecond))
	_, err = r.Renew(ctx, a.Token)
	if time.Since(renewedAt) < cfg.TTL && err != nil {
		t.Fatalf("Renew past the original expiry but inside the renewed one: %v", err)
	}
}

// testExpiry leaves a lease alone with a blocked waiter: the registry must
// notice the expiry by itself and hand the slot over.
func testExpiry(t *testing.T, r lease.Registry, cfg lease.Config) {
	start := time.Now()
	a := mustAcquire(t, r, "h")
	if a.ExpiresAt.Before(start.Add(cfg.TTL)) {
		t.Errorf("ExpiresAt %v is less than TTL after the call began (%v)", a.ExpiresAt, start)
	}
	ctx, cancel := context.WithTimeout(t.Context(), cfg.TTL+expirySlack+time.Second)
	defer cancel()
	waiter := acquireAsync(ctx, r, "waiter")
	waitForWaiting(t, r, 1)
	// Just before the TTL the lease must still be there.
	sleepUntil(start.Add(cfg.TTL - 400*time.Millisecond))
	s := mustList(t, r)
	if time.Since(start) < cfg.TTL && (len(s.Leases) != 1 || s.Leases[0].Handle != a.Handle || s.Waiting != 1) {
		t.Fatalf("%v after acquire, before the TTL %v: pool %+v, want the lease and one waiter", time.Since(start), cfg.TTL, s)
	}
	// From here on the only call is the blocked waiter's.
	res := <-waiter
	if res.err != nil {
		t.Fatalf("waiter: %v", res.err)
	}
	if took := res.at.Sub(start); took < cfg.TTL {
		t.Errorf("waiter served %v after the holder acquired, before its TTL %v", took, cfg.TTL)
	} else if took > cfg.TTL+expirySlack {
		t.Errorf("waiter served %v after the holder acquired; want within %v of TTL %v", took, expirySlack, cfg.TTL)
	}
	if _, err := r.Renew(t.Context(), a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Renew of the expired lease: %v, want ErrNotFound", err)
	}
	s = mustList(t, r)
	if len(s.Leases) != 1 || s.Leases[0].Handle != res.lease.Handle || s.Waiting != 0 {
		t.Errorf("after expiry: pool %+v, want only the waiter's lease", s)
	}
}

func testRelease(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	a := mustAcquire(t, r, "h")
	mustRelease(t, r, a.Token)
	if err := r.Release(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("second Release: %v, want ErrNotFound", err)
	}
	if _, err := r.Renew(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Renew after Release: %v, want ErrNotFound", err)
	}
	if p, err := r.Pin(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Pin after Release: %v, want ErrNotFound", err)
	} else if err == nil {
		p.Unpin()
	}
	b := mustAcquire(t, r, "next")
	if b.Token == a.Token {
		t.Errorf("released token granted again")
	}
	wantRefused(t, r, cfg)
}

func testUnknown(t *testing.T, r lease.Registry, _ lease.Config) {
	ctx := t.Context()
	live := mustAcquire(t, r, "h")
	for _, tok := range []string{randomToken(), "", "zz", strings.ToUpper(live.Token), live.Token + "0", live.Token[:31]} {
		if _, err := r.Renew(ctx, tok); !errors.Is(err, lease.ErrNotFound) {
			t.Errorf("Renew(%q): %v, want ErrNotFound", tok, err)
		}
		if err := r.Release(ctx, tok); !errors.Is(err, lease.ErrNotFound) {
			t.Errorf("Release(%q): %v, want ErrNotFound", tok, err)
		}
		if p, err := r.Pin(ctx, tok); !errors.Is(err, lease.ErrNotFound) {
			t.Errorf("Pin(%q): %v, want ErrNotFound", tok, err)
			if err == nil {
				p.Unpin()
			}
		}
	}
	for _, h := range []string{"", "no-such-handle", live.Token} {
		if err := r.Revoke(ctx, h); !errors.Is(err, lease.ErrNotFound) {
			t.Errorf("Revoke(%q): %v, want ErrNotFound", h, err)
		}
	}
	wantLeases(t, r, 1)
}

func testReacquire(t *testing.T, r lease.Registry, _ lease.Config) {
	ctx := t.Context()
	a := mustAcquire(t, r, "h")
	// Queue a waiter too: the holder must get its own lease back even so.
	wctx, cancel := context.WithCancel(ctx)
	waiter := acquireAsync(wctx, r, "waiter")
	waitForWaiting(t, r, 1)
	time.Sleep(20 * time.Millisecond)
	for _, wait := range []bool{false, true} {
		b, err := r.Acquire(ctx, lease.AcquireRequest{Holder: "h", Token: a.Token, Wait: wait})
		if err != nil {
			t.Fatalf("Acquire with own live token (wait=%v) on a full pool: %v", wait, err)
		}
		if b.Token != a.Token || b.Handle != a.Handle || !b.AcquiredAt.Equal(a.AcquiredAt) {
			t.Errorf("re-acquire returned %+v, want the same lease as %+v", b, a)
		}
		if b.ExpiresAt.Before(a.ExpiresAt) {
			t.Errorf("re-acquire moved ExpiresAt back from %v to %v", a.ExpiresAt, b.ExpiresAt)
		}
	}
	cancel()
	if res := <-waiter; !errors.Is(res.err, context.Canceled) {
		t.Errorf("waiter: %v, want context.Canceled", res.err)
	}
	wantLeases(t, r, 1)
}

func testMaxAge(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	start := time.Now()
	a := mustAcquire(t, r, "h")
	if got := a.MaxExpiresAt.Sub(a.AcquiredAt); got < cfg.MaxAge-time.Second || got > cfg.MaxAge+time.Second {
		t.Errorf("MaxExpiresAt-AcquiredAt = %v, want about MaxAge %v", got, cfg.MaxAge)
	}
	// now+TTL stays within MaxExpiresAt for the first MaxAge-TTL (1 s).
	time.Sleep(100 * time.Millisecond)
	if _, err := r.Renew(ctx, a.Token); err != nil && time.Since(start) < cfg.MaxAge-cfg.TTL-100*time.Millisecond {
		t.Fatalf("early Renew: %v", err)
	}
	time.Sleep(cfg.MaxAge - cfg.TTL + 200*time.Millisecond)
	if _, err := r.Renew(ctx, a.Token); !errors.Is(err, lease.ErrTooOld) {
		t.Fatalf("Renew past MaxAge-TTL: %v, want ErrTooOld", err)
	}
	// Refused renewal leaves the lease to run out its current expiry.
	s := mustList(t, r)
	if len(s.Leases) != 1 || s.Leases[0].Handle != a.Handle {
		t.Fatalf("after ErrTooOld the pool is %+v, want the lease still live", s.Leases)
	}
	// Re-acquiring with the too-old token replaces it, even on a full pool.
	b, err := r.Acquire(ctx, lease.AcquireRequest{Holder: "h", Token: a.Token})
	if err != nil {
		t.Fatalf("Acquire with a too-old token: %v, want a new lease", err)
	}
	if b.Token == a.Token || b.Handle == a.Handle {
		t.Errorf("Acquire with a too-old token returned the old lease %+v", b)
	}
	if _, err := r.Renew(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("old token after replacement: %v, want ErrNotFound", err)
	}
	wantLeases(t, r, 1)
}

func testRevoke(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	a := mustAcquire(t, r, "h")
	if err := r.Revoke(ctx, a.Handle); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := r.Renew(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Renew after Revoke: %v, want ErrNotFound", err)
	}
	if err := r.Revoke(ctx, a.Handle); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("second Revoke: %v, want ErrNotFound", err)
	}
	mustAcquire(t, r, "next")
	wantRefused(t, r, cfg)
}

// testPin holds a pin past the TTL and the maximum age (MaxAge is TTL plus
// the expiry slack): the lease stays, and unpinning ends it at once.
func testPin(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	a := mustAcquire(t, r, "h")
	p, err := r.Pin(ctx, a.Token)
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	unpin := p.Unpin
	if l := p.Lease(); !l.Pinned || l.Handle != a.Handle {
		t.Errorf("Pin returned %+v, want the lease, pinned", l)
	}
	if p2, err := r.Pin(ctx, a.Token); !errors.Is(err, lease.ErrBusy) {
		t.Errorf("second Pin: %v, want ErrBusy", err)
		if err == nil {
			p2.Unpin()
		}
	}
	time.Sleep(cfg.MaxAge + 200*time.Millisecond)
	s := mustList(t, r)
	if len(s.Leases) != 1 || !s.Leases[0].Pinned {
		t.Fatalf("pinned lease past TTL and max age: pool %+v, want it live and pinned", s.Leases)
	}
	wantRefused(t, r, cfg)
	unpin()
	unpin() // idempotent
	if s := mustList(t, r); len(s.Leases) != 0 {
		t.Errorf("unpin past max age left %+v, want the lease ended", s.Leases)
	}
	if _, err := r.Renew(ctx, a.Token); !errors.Is(err, lease.ErrNotFound) {
		t.Errorf("Renew after unpin past max age: %v, want ErrNotFound", err)
	}
	mustAcquire(t, r, "next")
}

// testUnpinRenews unpins part-way through the TTL: the lease then outlives
// its acquire-time expiry.
func testUnpinRenews(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx := t.Context()
	start := time.Now()
	a := mustAcquire(t, r, "h")
	p, err := r.Pin(ctx, a.Token)
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	unpin := p.Unpin
	time.Sleep(cfg.TTL * 3 / 4)
	unpinnedAt := time.Now()
	unpin()
	unpin() // idempotent
	s := mustList(t, r)
	if len(s.Leases) != 1 || s.Leases[0].Pinned {
		t.Fatalf("after unpin: pool %+v, want the lease live and unpinned", s.Leases)
	}
	if exp := s.Leases[0].ExpiresAt; exp.Before(unpinnedAt.Add(cfg.TTL / 2)) {
		t.Errorf("after unpin ExpiresAt is %v, want about %v", exp, unpinnedAt.Add(cfg.TTL))
	}
	// Past the acquire-time expiry, inside the one unpin set: still live.
	sleepUntil(start.Add(cfg.TTL + 300*time.Millisecond))
	_, err = r.Renew(ctx, a.Token)
	if time.Since(unpinnedAt) < cfg.TTL && err != nil {
		t.Fatalf("Renew %v after unpin, before TTL %v: %v", time.Since(unpinnedAt), cfg.TTL, err)
	}
	// The lease can be pinned again.
	p, err = r.Pin(ctx, a.Token)
	if err != nil {
		t.Fatalf("Pin after unpin: %v", err)
	}
	p.Unpin()
}

func testList(t *testing.T, r lease.Registry, cfg lease.Config) {
	s := mustList(t, r)
	if s.Capacity != cfg.Capacity || len(s.Leases) != 0 || s.Waiting != 0 {
		t.Fatalf("empty pool lists as %+v", s)
	}
	var held []lease.Lease
	for _, h := range []string{"a", "b", "c"} {
		held = append(held, mustAcquire(t, r, h))
		time.Sleep(5 * time.Millisecond) // distinct AcquiredAt, for order
	}
	check := func(want ...lease.Lease) {
		t.Helper()
		s := mustList(t, r)
		if s.Capacity != cfg.Capacity || s.Waiting != 0 || len(s.Leases) != len(want) {
			t.Fatalf("List = capacity %d, waiting %d, %d leases; want %d, 0, %d", s.Capacity, s.Waiting, len(s.Leases), cfg.Capacity, len(want))
		}
		for i, l := range s.Leases {
			if l.Token != "" {
				t.Errorf("List shows a token for %q", l.Holder)
			}
			if l.Handle != want[i].Handle || l.Holder != want[i].Holder {
				t.Errorf("List[%d] = %q/%q, want %q/%q (oldest first)", i, l.Holder, l.Handle, want[i].Holder, want[i].Handle)
			}
			if l.TTL != cfg.TTL || l.Pinned || !l.ExpiresAt.After(l.AcquiredAt) || l.MaxExpiresAt.Before(l.ExpiresAt) {
				t.Errorf("List[%d] = %+v: wrong TTL, pin or times", i, l)
			}
		}
	}
	check(held...)
	mustRelease(t, r, held[1].Token)
	check(held[0], held[2])
}

func testFIFO(t *testing.T, r lease.Registry, cfg lease.Config) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	h := mustAcquire(t, r, "holder")
	names := []string{"w1", "w2", "w3"}
	results := make(chan result, len(names))
	for i, name := range names {
		go func() {
			l, err := r.Acquire(ctx, lease.AcquireRequest{Holder: name, Wait: true})
			results <- result{l, err, time.Now()}
		}()
		waitForWaiting(t, r, i+1)
	}
	// Someone is waiting: a newcomer that will not wait is refused.
	wantRefused(t, r, cfg)
	token := h.Token
	for _, name := range names {
		mustRelease(t, r, token)
		// The freed slot went to the head waiter, not to this newcomer.
		wantRefused(t, r, cfg)
		select {
		case res := <-results:
			if res.err != nil {
				t.Fatalf("waiter: %v", res.err)
			}
			if res.lease.Holder != name {
				t.Fatalf("slot went to %q, want %q (first come, first served)", res.lease.Holder, name)
			}
			token = res.lease.Token
		case <-time.After(prompt):
			t.Fatalf("no waiter served within %v of a release", prompt)
		}
	}
	if s := mustList(t, r); s.Waiting != 0 || len(s.Leases) != 1 {
		t.Errorf("after serving all waiters: %+v", s)
	}
}

func testWaiterDeadline(t *testing.T, r lease.Registry, cfg lease.Config) {
	h := mustAcquire(t, r, "holder")
	const patience = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	start := time.Now()
	_, err := r.Acquire(ctx, lease.AcquireRequest{Holder: "waiter", Wait: true})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter past its deadline: %v, want context.DeadlineExceeded", err)
	}
	if took < patience || took > patience+prompt {
		t.Errorf("waiter gave up after %v, want about %v", took, patience)
	}
	waitForWaiting(t, r, 0)
	// The queue is empty again: the freed slot goes to a newcomer.
	mustRelease(t, r, h.Token)
	mustAcquire(t, r, "newcomer")
	wantRefused(t, r, cfg)
}

func testWaiterCanceled(t *testing.T, r lease.Registry, _ lease.Config) {
	h := mustAcquire(t, r, "holder")
	ctx, cancel := context.WithCancel(t.Context())
	waiter := acquireAsync(ctx, r, "waiter")
	waitForWaiting(t, r, 1)
	cancel()
	if res := <-waiter; !errors.Is(res.err, context.Canceled) {
		t.Fatalf("canceled waiter: %v, want context.Canceled", res.err)
	}
	waitForWaiting(t, r, 0)
	mustRelease(t, r, h.Token)
	mustAcquire(t, r, "newcomer")
}

func testConcurrent(t *testing.T, r lease.Registry, cfg lease.Config) {
	const callers = 200
	var (
		wg      sync.WaitGroup
		granted atomic.Int32
		mu      sync.Mutex
		tokens  = map[string]bool{}
	)
	ready := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-ready
			l, err := r.Acquire(t.Context(), lease.AcquireRequest{Holder: "storm"})
			switch {
			case err == nil:
				granted.Add(1)
				mu.Lock()
				tokens[l.Token] = true
				mu.Unlock()
			case !errors.Is(err, lease.ErrExhausted):
				t.Errorf("Acquire: %v, want success or ErrExhausted", err)
			}
		})
	}
	close(ready)
	wg.Wait()
	if n := int(granted.Load()); n != cfg.Capacity || len(tokens) != cfg.Capacity {
		t.Errorf("%d concurrent acquires granted %d (%d distinct tokens), want exactly %d", callers, n, len(tokens), cfg.Capacity)
	}
	wantLeases(t, r, cfg.Capacity)
}

func testClose(t *testing.T, r lease.Registry, _ lease.Config) {
	mustAcquire(t, r, "holder")
	waiter := acquireAsync(t.Context(), r, "waiter")
	waitForWaiting(t, r, 1)
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case res := <-waiter:
		if !errors.Is(res.err, lease.ErrClosed) {
			t.Errorf("waiter at Close: %v, want ErrClosed", res.err)
		}
	case <-time.After(prompt):
		t.Fatalf("Close did not wake the waiter within %v", prompt)
	}
	if _, err := r.Acquire(t.Context(), lease.AcquireRequest{Holder: "late"}); err == nil {
		t.Errorf("Acquire after Close succeeded")
	}
}

// result is the outcome of an Acquire run in the background.
type result struct {
	lease lease.Lease
	err   error
	at    time.Time
}

// acquireAsync starts a waiting Acquire; the channel gets its result.
func acquireAsync(ctx context.Context, r lease.Registry, holder string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		l, err := r.Acquire(ctx, lease.AcquireRequest{Holder: holder, Wait: true})
		ch <- result{l, err, time.Now()}
	}()
	return ch
}

func mustAcquire(t *testing.T, r lease.Registry, holder string) lease.Lease {
	t.Helper()
	l, err := r.Acquire(t.Context(), lease.AcquireRequest{Holder: holder})
	if err != nil {
		t.Fatalf("Acquire(%q): %v", holder, err)
	}
	if l.Holder != holder {
		t.Fatalf("Acquire(%q) granted a lease held by %q", holder, l.Holder)
	}
	return l
}

func mustRelease(t *testing.T, r lease.Registry, token string) {
	t.Helper()
	if err := r.Release(t.Context(), token); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

func mustList(t *testing.T, r lease.Registry) lease.Snapshot {
	t.Helper()
	s, err := r.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return s
}

// wantRefused checks that a newcomer is refused with a usable retry hint.
func wantRefused(t *testing.T, r lease.Registry, cfg lease.Config) *lease.ExhaustedError {
	t.Helper()
	_, err := r.Acquire(t.Context(), lease.AcquireRequest{Holder: "newcomer"})
	var e *lease.ExhaustedError
	if !errors.As(err, &e) || !errors.Is(err, lease.ErrExhausted) {
		t.Fatalf("Acquire on a full pool: %v, want an *ExhaustedError", err)
	}
	if e.Capacity != cfg.Capacity {
		t.Errorf("ExhaustedError.Capacity = %d, want %d", e.Capacity, cfg.Capacity)
	}
	if e.RetryAfter <= 0 || e.RetryAfter > cfg.TTL {
		t.Errorf("ExhaustedError.RetryAfter = %v, want in (0, %v]", e.RetryAfter, cfg.TTL)
	}
	return e
}

func wantLeases(t *testing.T, r lease.Registry, n int) {
	t.Helper()
	if got := len(mustList(t, r).Leases); got != n {
		t.Errorf("List shows %d leases, want %d", got, n)
	}
}

func waitForWaiting(t *testing.T, r lease.Registry, n int) {
	t.Helper()
	eventually(t, prompt, "waiters to queue", func() bool { return mustList(t, r).Waiting == n })
}

// eventually polls cond until it holds or within has passed.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

// randomToken is a well-formed token no registry has granted.
func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
