package lease

import "time"

// Expiry in the memory registry: every locked section retires what has
// expired (lock), and a timer armed for the earliest expiry of an unpinned
// lease does the same when no call comes, so that waiters are served on
// time. Both read the time package's clock only.

// expireLocked retires every unpinned lease whose expiry has come and hands
// the freed slots to waiters.
func (m *Memory) expireLocked(now time.Time, t *tally) {
	for _, e := range m.byToken {
		if !e.lease.Pinned && !e.lease.ExpiresAt.After(now) {
			m.removeLocked(e)
			t.expired++
		}
	}
	m.serveLocked(now)
}

// exhaustedLocked builds a refusal. RetryAfter is when the first unpinned
// lease expires; pinned leases have no expiry, so if every lease is pinned
// the best guess is one TTL. Expired leases are already gone, so the result
// is positive.
func (m *Memory) exhaustedLocked(now time.Time) *ExhaustedError {
	retry := m.cfg.TTL
	if at, ok := m.nextExpiryLocked(); ok {
		retry = at.Sub(now)
	}
	return &ExhaustedError{Capacity: m.cfg.Capacity, RetryAfter: retry}
}

// nextExpiryLocked returns the earliest expiry among unpinned leases.
func (m *Memory) nextExpiryLocked() (time.Time, bool) {
	var at time.Time
	found := false
	for _, e := range m.byToken {
		if !e.lease.Pinned && (!found || e.lease.ExpiresAt.Before(at)) {
			at, found = e.lease.ExpiresAt, true
		}
	}
	return at, found
}

// armLocked makes sure the timer fires by the next expiry. A timer already
// due no later than that is kept: if it fires early it finds nothing to
// retire and re-arms, which is cheaper than re-arming on every renewal.
func (m *Memory) armLocked(now time.Time) {
	at, ok := m.nextExpiryLocked()
	if !ok {
		m.stopTimerLocked()
		return
	}
	if m.timer != nil && !m.timerAt.After(at) {
		return
	}
	m.stopTimerLocked()
	m.timerGen++
	gen := m.timerGen
	m.timerAt = at
	m.timer = time.AfterFunc(at.Sub(now), func() { m.fire(gen) })
}

func (m *Memory) stopTimerLocked() {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	m.timerGen++ // a callback already under way finds itself stale
}

// fire is the timer callback: it retires expired leases, which serves
// waiters, and re-arms for the next expiry.
func (m *Memory) fire(gen uint64) {
	m.mu.Lock()
	if m.closed || gen != m.timerGen {
		m.mu.Unlock()
		return
	}
	m.timer = nil
	var t tally
	now := time.Now()
	m.expireLocked(now, &t)
	m.unlock(&t, now)
}
