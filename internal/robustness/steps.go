package robustness

import (
	"math"
	"slices"
)

// stepAcquire: a grant never takes the pool past capacity; a repeat of a
// live lease's request_id by its holder gets that lease back.
func (p Params) stepAcquire(s pool, op Op) []pool {
	in, out := op.Input, op.Output
	switch out.Result {
	case ResultOK:
	case ResultUnknown:
		return p.acquireUnknown(s, op)
	default:
		return []pool{s} // refusals change nothing
	}
	if i := s.find(out.LeaseID); i >= 0 {
		l := s[i]
		if l.Ended || in.RequestID == "" || l.RequestID != in.RequestID || l.Holder != in.Holder {
			return nil // an existing lease handed to a request that did not name it
		}
		return []pool{s.with(i, p.reported(l, out.Expire))}
	}
	if in.RequestID != "" {
		var drop []int
		for i, l := range s {
			if l.Holder != in.Holder || l.RequestID != in.RequestID {
				continue
			}
			if l.ID != "" && p.status(l, op) == live {
				return nil // the live lease of this request_id must have been returned
			}
			// A named one must have expired; a ghost either was this very
			// grant or expired: gone either way.
			drop = append(drop, i)
		}
		s = s.without(drop...)
	}
	nl := p.reported(leaseState{ID: out.LeaseID, Handle: out.Handle, Holder: in.Holder, RequestID: in.RequestID, MaxExp: out.MaxExpire}, out.Expire)
	return p.admit(s, nl, op)
}

// acquireUnknown: nothing happened, or a lease the client never learnt of
// was granted (a ghost), or a repeated request_id renewed its lease.
func (p Params) acquireUnknown(s pool, op Op) []pool {
	in := op.Input
	next := []pool{s}
	if in.RequestID != "" {
		for i, l := range s {
			if l.Holder == in.Holder && l.RequestID == in.RequestID {
				next = append(next, s.with(i, p.touched(l, p.end(op))))
			}
		}
	}
	g := leaseState{
		Holder: in.Holder, RequestID: in.RequestID,
		Lo:     op.Call + int64(p.TTL),
		Hi:     op.Output.ErrAt + int64(p.Settle+p.TTL+p.Late),
		MaxExp: op.Output.ErrAt + int64(p.Settle+p.MaxAge),
	}
	return append(next, p.admit(s, g, op)...)
}

// admit adds l to s if a slot was free: leases surely live all hold theirs;
// of those that may have expired, enough must have to make room.
func (p Params) admit(s pool, l leaseState, op Op) []pool {
	var nLive int
	var maybes []int
	for i, m := range s {
		switch p.status(m, op) {
		case live:
			nLive++
		case maybe:
			maybes = append(maybes, i)
		}
	}
	free := p.Capacity - 1 - nLive
	if free < 0 {
		return nil
	}
	if len(maybes) <= free {
		return []pool{s.plus(l)}
	}
	var next []pool
	for _, drop := range subsets(maybes, len(maybes)-free) {
		next = append(next, s.without(drop...).plus(l))
	}
	return next
}

// subsets returns every k-element subset of xs.
func subsets(xs []int, k int) [][]int {
	if k == 0 {
		return [][]int{nil}
	}
	if len(xs) < k {
		return nil
	}
	var out [][]int
	for _, rest := range subsets(xs[1:], k-1) {
		out = append(out, append([]int{xs[0]}, rest...))
	}
	return append(out, subsets(xs[1:], k)...)
}

// notFound: the server said lease i (-1: one the model does not hold) is
// not live, which it may say only if it may have ended.
func (p Params) notFound(s pool, op Op, i int) []pool {
	if i < 0 || s[i].Ended {
		return []pool{s} // an ended lease may still be listed a moment
	}
	if p.status(s[i], op) == live {
		return nil
	}
	return []pool{s.without(i)}
}

func (p Params) stepRenew(s pool, op Op) []pool {
	i := s.find(op.Input.LeaseID)
	switch op.Output.Result {
	case ResultOK:
		if i < 0 || s[i].Ended {
			return nil // renewed a lease that had ended
		}
		return []pool{s.with(i, p.reported(s[i], op.Output.Expire))}
	case ResultNotFound:
		return p.notFound(s, op, i)
	case ResultUnknown:
		if i >= 0 && !s[i].Ended {
			return []pool{s.with(i, p.touched(s[i], p.end(op)))}
		}
	}
	return []pool{s}
}

// stepEnd is a release or revoke of lease i: it must find the lease live,
// and after it succeeds the lease is ended: its slot free once its render
// stops, within StopWithin.
func (p Params) stepEnd(s pool, op Op, i int) []pool {
	switch op.Output.Result {
	case ResultOK:
		if i < 0 || s[i].Ended {
			return nil
		}
		return []pool{s.with(i, p.ended(s[i], p.end(op)))}
	case ResultNotFound:
		return p.notFound(s, op, i)
	case ResultUnknown:
		if i >= 0 && !s[i].Ended {
			return []pool{s, s.with(i, p.ended(s[i], p.end(op)))}
		}
	}
	return []pool{s}
}

// ended is l released or revoked by at: never live again. Its slot may stay
// taken a while, never counted as surely taken: until its render stops,
// and, if the store cannot free it then (etcd unreachable), until its
// expiry.
func (p Params) ended(l leaseState, at int64) leaseState {
	l.Ended, l.Lo = true, 0
	l.Hi = max(l.Hi, at+int64(p.StopWithin+p.Tolerance))
	return l
}

// stepRevoke names the lease by handle; an unnamed ghost a listing showed
// carries its handle too.
func (p Params) stepRevoke(s pool, op Op) []pool {
	return p.stepEnd(s, op, s.findHandle(op.Input.Handle))
}

// stepRender: a render runs under a live lease, pinning it; at its end the
// lease is renewed (and after its last reader left, it may go on for the
// orphan grace).
func (p Params) stepRender(s pool, op Op) []pool {
	i := s.find(op.Input.LeaseID)
	switch op.Output.Result {
	case ResultOK:
		if i < 0 || s[i].Ended {
			return nil // a whole video streamed under a lease that had ended
		}
		return []pool{s.with(i, p.touched(s[i], op.Return))}
	case ResultNotFound:
		return p.notFound(s, op, i)
	case ResultEnded, ResultUnknown:
		if i < 0 || s[i].Ended {
			return []pool{s}
		}
		at := op.Output.ErrAt
		if op.Return != math.MaxInt64 {
			at = op.Return
		} else {
			at += int64(p.Settle)
		}
		return []pool{s.with(i, p.touched(s[i], at+int64(p.OrphanGrace)))}
	}
	return []pool{s}
}

// stepList: a listing holds at most capacity leases, every lease surely
// live, and nothing no acquire explains; what it leaves out has ended.
func (p Params) stepList(s pool, op Op) []pool {
	out := op.Output
	if out.Result != ResultOK {
		return []pool{s}
	}
	if out.Count > p.Capacity || len(out.Handles) > p.Capacity {
		return nil
	}
	listed := make([]bool, len(s))
	for j, h := range out.Handles {
		i := s.findHandle(h)
		if i < 0 {
			// An unnamed ghost of the same holder must be this lease.
			i = slices.IndexFunc(s, func(l leaseState) bool { return l.ID == "" && l.Handle == "" && l.Holder == out.Holders[j] })
			if i < 0 {
				return nil // a lease no acquire explains
			}
			g := s[i]
			g.Handle = h
			return p.stepList(s.with(i, g), op) // s is re-sorted: mark again

		}
		listed[i] = true
	}
	var drop []int
	for i, l := range s {
		if listed[i] {
			continue
		}
		if p.status(l, op) == live {
			return nil // a live lease missing from the listing
		}
		drop = append(drop, i)
	}
	return []pool{s.without(drop...)}
}
