package lease

import (
	"cmp"
	"container/list"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Observer is told about lease events, for metrics. Calls are made without
// the registry's lock held, so an observer may be slow or call back into the
// registry without deadlocking it; calls from concurrent operations may
// interleave.
type Observer interface {
	// Granted: a new lease was handed to a caller (renewals are not grants).
	Granted()
	// Refused: an Acquire without wait found every slot taken.
	Refused()
	// Expired: a lease ended because its TTL ran out, once per lease.
	Expired()
	// Released: a lease was ended early by Release, Revoke, or by Acquire
	// replacing a lease that had reached its maximum age.
	Released()
}

// Memory is a Registry held in one process's memory. Its leases vanish with
// the process, and Capacity is enforced only among callers of this process.
//
// It reads time from the time package (time.Now, time.AfterFunc) and nothing
// else, so a test run inside a testing/synctest bubble drives its expiries
// with the bubble's fake clock.
type Memory struct {
	cfg Config

	mu sync.Mutex
	// byToken is keyed by the SHA-256 of the token, not the token itself:
	// the map compares keys with ordinary (variable-time) equality, and
	// comparing digests leaks nothing useful about a secret, whereas
	// comparing the secrets themselves could leak a prefix through timing.
	// No plaintext token is kept at all; methods echo back the caller's.
	//
	// byToken holds every lease that takes a slot, ending ones included
	// (released or revoked while pinned, kept until their render unpins),
	// so len(byToken) is the number of slots taken; byHandle and byRequest
	// hold live leases only.
	byToken   map[[sha256.Size]byte]*entry
	byHandle  map[string]*entry
	byRequest map[string]*entry // by RequestKey, for leases granted with a request id
	// queue holds *waiter in arrival order; the head is served first.
	queue list.List
	// timer wakes the registry at timerAt, the earliest expiry of an
	// unpinned lease, so that expiry frees slots for waiters even when no
	// other call arrives. timerGen tells a stale callback (one whose timer
	// was replaced or stopped after it had started) that it has nothing to do.
	timer    *time.Timer
	timerAt  time.Time
	timerGen uint64
	// seq numbers grants, breaking AcquiredAt ties when listing.
	seq    uint64
	closed bool
}

// entry is one live lease. Its Lease never carries the token.
type entry struct {
	key   [sha256.Size]byte
	lease Lease
	seq   uint64
	// pinned is the current pin, nil when unpinned; unpin compares it, so
	// that a stale unpin from an earlier pin cannot end a later one.
	pinned *Pin
	// ending is why a pinned lease ended (ErrReleased, ErrRevoked); it
	// keeps its slot until its pin is unpinned. nil while live.
	ending error
	// requestKey and sealed are set for a lease granted with a request id:
	// its key in byRequest and its token sealed by SealToken.
	requestKey, sealed string
}

// waiter is one blocked Acquire. The fields below ready are written under
// Memory.mu before ready is closed, and read by the waiter after it.
type waiter struct {
	req   AcquireRequest
	elem  *list.Element
	ready chan struct{}

	done  bool // served (granted or closed) or gone; no longer in the queue
	token string
	e     *entry
	err   error
}

// tally counts observer events during one locked section; they are reported
// after the lock is released.
type tally struct{ granted, refused, expired, released int }

var _ Registry = (*Memory)(nil)

// NewMemory returns an empty in-memory registry. Zero fields of cfg take their
// defaults.
func NewMemory(cfg Config) *Memory {
	return &Memory{
		cfg:       cfg.WithDefaults(),
		byToken:   make(map[[sha256.Size]byte]*entry),
		byHandle:  make(map[string]*entry),
		byRequest: make(map[string]*entry),
	}
}

// Acquire implements Registry. A malformed or unknown token is ignored and a
// new lease is sought, as for an empty one. A done ctx is refused before
// anything is granted, so an abandoned call cannot take a slot.
func (m *Memory) Acquire(ctx context.Context, req AcquireRequest) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, fmt.Errorf("lease: acquire: %w", err)
	}
	l, w, err := m.tryAcquire(req)
	if w == nil {
		return l, err
	}
	return m.await(ctx, w)
}

// tryAcquire renews, grants or refuses at once, or queues a waiter.
func (m *Memory) tryAcquire(req AcquireRequest) (Lease, *waiter, error) {
	var t tally
	now, err := m.lock(&t)
	defer m.unlock(&t, now)
	if err != nil {
		return Lease{}, nil, err
	}
	if e := m.byRequest[requestKeyOf(req)]; e != nil {
		// A repeat of a granted request: the same lease, renewed when it
		// can be, never a second slot.
		l, err := m.renewLocked(e, now)
		if err != nil {
			l = e.lease
		}
		l.Token = OpenToken(e.sealed, req.Holder, req.RequestID)
		return l, nil, nil
	}
	if e := m.lookupLocked(req.Token); e != nil {
		if l, err := m.renewLocked(e, now); err == nil {
			l.Token = req.Token
			return l, nil, nil
		}
		// Too old to renew: end it and compete like a new caller. Serving
		// the queue first gives the freed slot to those already waiting.
		m.removeLocked(e)
		t.released++
		m.serveLocked(now)
	}
	// A newcomer may take a free slot only when nobody is queued; otherwise
	// it would overtake the waiters (serveLocked keeps the queue empty
	// whenever a slot is free, so this is just a capacity check).
	if m.queue.Len() == 0 && len(m.byToken) < m.cfg.Capacity {
		tok, e := m.grantLocked(req, now)
		t.granted++
		l := e.lease
		l.Token = tok
		return l, nil, nil
	}
	if !req.Wait || m.queue.Len() >= m.cfg.MaxWaiting {
		t.refused++
		e := m.exhaustedLocked(now)
		e.Queue, e.MaxWaiting = req.Wait, m.cfg.MaxWaiting
		return Lease{}, nil, e
	}
	w := &waiter{req: req, ready: make(chan struct{})}
	w.elem = m.queue.PushBack(w)
	return Lease{}, w, nil
}

// await blocks until w is served or ctx ends.
func (m *Memory) await(ctx context.Context, w *waiter) (Lease, error) {
	select {
	case <-w.ready:
		if w.err != nil {
			return Lease{}, w.err
		}
		m.mu.Lock()
		l := w.e.lease
		m.mu.Unlock()
		// The grant is reported here rather than when it was made, so a
		// grant that an abandoning waiter hands back is never counted.
		(&tally{granted: 1}).report(m.cfg.Observer)
		l.Token = w.token
		return l, nil
	case <-ctx.Done():
	}
	err := fmt.Errorf("lease: gave up waiting for a slot: %w", ctx.Err())
	var t tally
	now, cerr := m.lock(&t)
	defer m.unlock(&t, now)
	switch {
	case cerr != nil:
		return Lease{}, err
	case !w.done:
		m.queue.Remove(w.elem)
		w.done = true
	case w.err == nil && m.byHandle[w.e.lease.Handle] == w.e:
		// A slot was handed over just as ctx ended. Nobody will ever learn
		// this token, so give the slot straight to the next waiter instead of
		// leaving it held until its TTL runs out.
		m.removeLocked(w.e)
		m.serveLocked(now)
	}
	return Lease{}, err
}

// Renew implements Registry.
func (m *Memory) Renew(_ context.Context, token string) (Lease, error) {
	var t tally
	now, err := m.lock(&t)
	defer m.unlock(&t, now)
	if err != nil {
		return Lease{}, err
	}
	e := m.lookupLocked(token)
	if e == nil {
		return Lease{}, ErrNotFound
	}
	l, err := m.renewLocked(e, now)
	if err != nil {
		return Lease{}, err
	}
	l.Token = token
	return l, nil
}

// Release implements Registry.
func (m *Memory) Release(_ context.Context, token string) error {
	var t tally
	now, err := m.lock(&t)
	defer m.unlock(&t, now)
	if err != nil {
		return err
	}
	return m.endLocked(m.lookupLocked(token), ErrReleased, &t, now)
}

// Revoke implements Registry.
func (m *Memory) Revoke(_ context.Context, handle string) error {
	var t tally
	now, err := m.lock(&t)
	defer m.unlock(&t, now)
	if err != nil {
		return err
	}
	return m.endLocked(m.byHandle[handle], ErrRevoked, &t, now)
}

// endLocked ends e (nil: no such live lease) and hands its slot on; a
// pinned lease is told why through its pin and keeps its slot until unpinned.
func (m *Memory) endLocked(e *entry, reason error, t *tally, now time.Time) error {
	if e == nil {
		return ErrNotFound
	}
	t.released++
	if e.pinned != nil {
		e.ending = reason
		delete(m.byHandle, e.lease.Handle)
		m.forgetRequestLocked(e)
		e.pinned.Lose(reason)
		return nil
	}
	m.removeLocked(e)
	m.serveLocked(now)
	return nil
}

// Pin implements Registry. On error the returned unpin is a no-op rather than
// nil, so a caller that defers it before checking err does not panic.
func (m *Memory) Pin(_ context.Context, token string) (*Pin, error) {
	var t tally
	now, err := m.lock(&t)
	defer m.unlock(&t, now)
	if err != nil {
		return nil, err
	}
	e := m.lookupLocked(token)
	if e == nil {
		return nil, ErrNotFound
	}
	if e.lease.Pinned {
		return nil, ErrBusy
	}
	e.lease.Pinned = true
	l := e.lease
	l.Token = token
	var p *Pin
	p = NewPin(l, func() { m.unpin(e, p) })
	e.pinned = p
	return p, nil
}

// unpin ends pin p on e, if e still takes a slot under that pin. An ending
// lease gives its slot up here.
func (m *Memory) unpin(e *entry, p *Pin) {
	var t tally
	now, err := m.lock(&t)
	defer m.unlock(&t, now)
	if err != nil || e.pinned != p || m.byToken[e.key] != e {
		return
	}
	e.pinned = nil
	e.lease.Pinned = false
	if e.ending != nil {
		m.removeLocked(e)
		m.serveLocked(now)
		return
	}
	e.lease.ExpiresAt = minTime(now.Add(e.lease.TTL), e.lease.MaxExpiresAt)
	// Past its maximum age the lease ends here, as an expiry.
	m.expireLocked(now, &t)
}

// List implements Registry.
func (m *Memory) List(context.Context) (Snapshot, error) {
	var t tally
	now, err := m.lock(&t)
	defer m.unlock(&t, now)
	if err != nil {
		return Snapshot{}, err
	}
	es := make([]*entry, 0, len(m.byToken))
	ending := 0
	for _, e := range m.byToken {
		if e.ending != nil {
			ending++
			continue
		}
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int {
		if c := a.lease.AcquiredAt.Compare(b.lease.AcquiredAt); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	s := Snapshot{Capacity: m.cfg.Capacity, Leases: make([]Lease, len(es)), Waiting: m.queue.Len(), Ending: ending}
	for i, e := range es {
		s.Leases[i] = e.lease
	}
	return s, nil
}

// Close implements Registry. Later calls fail with ErrClosed; closing twice is
// harmless.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.stopTimerLocked()
	for el := m.queue.Front(); el != nil; el = el.Next() {
		w := el.Value.(*waiter)
		w.done = true
		w.err = ErrClosed
		close(w.ready)
	}
	m.queue.Init()
	return nil
}

// lock takes the lock and retires expired leases, so that every method sees
// only live ones whether or not the timer has fired yet. The caller must
// defer unlock even when err (ErrClosed) is returned.
func (m *Memory) lock(t *tally) (time.Time, error) {
	m.mu.Lock()
	if m.closed {
		return time.Time{}, ErrClosed
	}
	now := time.Now()
	m.expireLocked(now, t)
	return now, nil
}

// unlock re-arms the expiry timer for whatever the locked section changed,
// releases the lock and reports t to the observer.
func (m *Memory) unlock(t *tally, now time.Time) {
	if !m.closed {
		m.armLocked(now)
	}
	m.mu.Unlock()
	t.report(m.cfg.Observer)
}

func (t *tally) report(o Observer) {
	if o == nil {
		return
	}
	for range t.granted {
		o.Granted()
	}
	for range t.refused {
		o.Refused()
	}
	for range t.expired {
		o.Expired()
	}
	for range t.released {
		o.Released()
	}
}

// lookupLocked returns the live lease with token, or nil. Malformed tokens
// are never stored, so they are turned away before hashing.
func (m *Memory) lookupLocked(token string) *entry {
	if !ValidToken(token) {
		return nil
	}
	if e := m.byToken[sha256.Sum256([]byte(token))]; e != nil && e.ending == nil {
		return e
	}
	return nil
}

// requestKeyOf is req's key in byRequest; "" (never a key) without a
// request id.
func requestKeyOf(req AcquireRequest) string {
	if req.RequestID == "" {
		return ""
	}
	return RequestKey(req.Holder, req.RequestID)
}

func (m *Memory) forgetRequestLocked(e *entry) {
	if e.requestKey != "" && m.byRequest[e.requestKey] == e {
		delete(m.byRequest, e.requestKey)
	}
}

// renewLocked pushes e's expiry to now+TTL unless that passes its maximum
// age, in which case e is left as it was.
func (m *Memory) renewLocked(e *entry, now time.Time) (Lease, error) {
	exp := now.Add(e.lease.TTL)
	if exp.After(e.lease.MaxExpiresAt) {
		return Lease{}, ErrTooOld
	}
	e.lease.ExpiresAt = exp
	return e.lease, nil
}

// grantLocked creates a lease for holder and returns it with its token. The
// caller has checked capacity.
func (m *Memory) grantLocked(req AcquireRequest, now time.Time) (string, *entry) {
	// Collisions are astronomically unlikely at 128 and 64 bits, but a
	// duplicate would silently merge two leases, so it costs one lookup to
	// rule them out.
	var token string
	var key [sha256.Size]byte
	for {
		token = NewToken()
		key = sha256.Sum256([]byte(token))
		if m.byToken[key] == nil {
			break
		}
	}
	var handle string
	for {
		handle = NewHandle()
		if m.byHandle[handle] == nil {
			break
		}
	}
	m.seq++
	maxExp := now.Add(m.cfg.MaxAge)
	e := &entry{
		key: key,
		seq: m.seq,
		lease: Lease{
			Handle:       handle,
			Holder:       req.Holder,
			AcquiredAt:   now,
			ExpiresAt:    minTime(now.Add(m.cfg.TTL), maxExp),
			MaxExpiresAt: maxExp,
			TTL:          m.cfg.TTL,
		},
	}
	m.byToken[key] = e
	m.byHandle[handle] = e
	if k := requestKeyOf(req); k != "" {
		e.requestKey, e.sealed = k, SealToken(token, req.Holder, req.RequestID)
		m.byRequest[k] = e
	}
	return token, e
}

// removeLocked forgets e. A pin on it becomes stale: its unpin does nothing.
func (m *Memory) removeLocked(e *entry) {
	delete(m.byToken, e.key)
	if m.byHandle[e.lease.Handle] == e {
		delete(m.byHandle, e.lease.Handle)
	}
	m.forgetRequestLocked(e)
}

// serveLocked grants free slots to waiters, head first. It runs after every
// change that can free a slot, so a free slot never sits idle while someone
// waits and a newcomer cannot take it.
func (m *Memory) serveLocked(now time.Time) {
	for m.queue.Len() > 0 && len(m.byToken) < m.cfg.Capacity {
		w := m.queue.Remove(m.queue.Front()).(*waiter)
		w.token, w.e = m.grantLocked(w.req, now)
		w.done = true
		close(w.ready)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
