package robustness

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Params are the pool's settings as the model needs them.
type Params struct {
	Capacity int
	TTL      time.Duration
	MaxAge   time.Duration
	// Tolerance is the slack on every time the client and server compare:
	// a lease is surely live only until Tolerance before its reported
	// expiry.
	Tolerance time.Duration
	// Late is how long after its reported expiry a lease may still be live:
	// the memory store ends it on time; etcd ends leases late (its expiry
	// loop, and a leader change restarting every countdown).
	Late time.Duration
	// OrphanGrace is how long a render goes on, its lease pinned, after its
	// last reader left.
	OrphanGrace time.Duration
	// Settle is how long after a client gave up on a call (transport
	// error, deadline) the server may still carry it out.
	Settle time.Duration
	// StopWithin is how soon after its lease's release or revocation a
	// render stops; until then the ended lease may still hold its slot
	// (and be listed), but is never renewed, released or rendered again.
	StopWithin time.Duration
	// Memory: the pool lives in one replica's memory; a crash empties it.
	Memory bool
}

// The scenarios' pools: capacity 3, short leases so that expiry and the
// maximum age happen during a run.
var (
	// MemoryParams: the memory store ends leases on time.
	MemoryParams = Params{
		Capacity: 3, TTL: 2 * time.Second, MaxAge: 8 * time.Second,
		Tolerance: 300 * time.Millisecond, Late: 300 * time.Millisecond, Settle: time.Second,
		OrphanGrace: 3 * time.Second, StopWithin: time.Second, Memory: true,
	}
	// EtcdParams: etcd ends leases late (its expiry loop, and a new leader
	// restarts every countdown with the whole TTL plus the election
	// timeout); its TTLs are whole seconds, at least 2.
	EtcdParams = Params{
		Capacity: 3, TTL: 3 * time.Second, MaxAge: 12 * time.Second,
		Tolerance: 500 * time.Millisecond, Late: 5 * time.Second, Settle: 5 * time.Second,
		OrphanGrace: 3 * time.Second, StopWithin: time.Second,
	}
)

// leaseState is one lease the model holds live, or a ghost: a lease an
// acquire of unknown outcome may have granted (ID empty; Handle set once a
// listing showed it), or an ended one: released or revoked, its slot held
// until its render (if any) stops.
type leaseState struct {
	ID, Handle, Holder, RequestID string
	Ended                         bool
	// Lo and Hi bound the expiry: live surely before Lo, surely ended
	// after Hi.
	Lo, Hi int64
	MaxExp int64
}

// pool is the model's state: leases in canonical order. Steps never modify
// a pool, they return new ones.
type pool []leaseState

func comparePool(a, b leaseState) int {
	return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Holder, b.Holder),
		strings.Compare(a.RequestID, b.RequestID), strings.Compare(a.Handle, b.Handle), cmpBool(a.Ended, b.Ended),
		cmp.Compare(a.Lo, b.Lo), cmp.Compare(a.Hi, b.Hi), cmp.Compare(a.MaxExp, b.MaxExp))
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func (s pool) plus(l leaseState) pool {
	n := append(slices.Clone(s), l)
	slices.SortFunc(n, comparePool)
	return n
}

func (s pool) with(i int, l leaseState) pool {
	n := slices.Clone(s)
	n[i] = l
	slices.SortFunc(n, comparePool)
	return n
}

func (s pool) without(drop ...int) pool {
	n := make(pool, 0, len(s))
	for i, l := range s {
		if !slices.Contains(drop, i) {
			n = append(n, l)
		}
	}
	return n
}

func (s pool) find(id string) int {
	if id == "" {
		return -1
	}
	return slices.IndexFunc(s, func(l leaseState) bool { return l.ID == id })
}

func (s pool) findHandle(h string) int {
	if h == "" {
		return -1
	}
	return slices.IndexFunc(s, func(l leaseState) bool { return l.Handle == h })
}

// liveness is what the model knows of a lease at an operation.
type liveness int

const (
	maybe liveness = iota
	live
	expired
)

// end is the latest time an operation can have taken effect: its return,
// or, for an unknown outcome, shortly after the client gave up.
func (p Params) end(op Op) int64 {
	if op.Return == math.MaxInt64 {
		return op.Output.ErrAt + int64(p.Settle)
	}
	return op.Return
}

func (p Params) status(l leaseState, op Op) liveness {
	switch {
	case op.Call > l.Hi:
		return expired
	case p.end(op) < l.Lo-int64(p.Tolerance):
		return live
	}
	return maybe
}

// prune drops the leases surely ended when op began.
func (p Params) prune(s pool, op Op) pool {
	var drop []int
	for i, l := range s {
		if p.status(l, op) == expired {
			drop = append(drop, i)
		}
	}
	if drop == nil {
		return s
	}
	return s.without(drop...)
}

// reported is a lease whose expiry the server just reported.
func (p Params) reported(l leaseState, expire int64) leaseState {
	l.Lo, l.Hi = expire, expire+int64(p.Late)
	return l
}

// touched is a lease the server may have renewed up to at, its maximum age
// ending it at once if passed (a render's unpin at its end, or a renewal
// whose outcome is unknown).
func (p Params) touched(l leaseState, at int64) leaseState {
	exp := min(at+int64(p.TTL), max(l.MaxExp, at))
	l.Hi = max(l.Hi, exp+int64(p.Late))
	return l
}

// Model is porcupine's sequential specification of the lease pool.
func (p Params) Model() porcupine.Model {
	m := porcupine.NondeterministicModel{
		Init: func() []any { return []any{pool{}} },
		Step: func(state, input, output any) []any {
			var out []any
			for _, s := range p.Step(state.(pool), input.(Op)) {
				out = append(out, s)
			}
			return out
		},
		Equal:             func(a, b any) bool { return slices.Equal(a.(pool), b.(pool)) },
		Hash:              hashPool,
		DescribeOperation: func(input, _ any) string { return describeOp(input.(Op)) },
		DescribeState:     func(state any) string { return describePool(state.(pool)) },
	}
	return m.ToModel()
}

// Step returns every pool op can lead to from s; none if op is impossible.
func (p Params) Step(s pool, op Op) []pool {
	s = p.prune(s, op)
	switch op.Input.Kind {
	case KindAcquire:
		return p.stepAcquire(s, op)
	case KindRenew:
		return p.stepRenew(s, op)
	case KindRelease:
		return p.stepEnd(s, op, s.find(op.Input.LeaseID))
	case KindRevoke:
		return p.stepRevoke(s, op)
	case KindRender:
		return p.stepRender(s, op)
	case KindList:
		return p.stepList(s, op)
	case KindCrash:
		if p.Memory {
			return []pool{{}}
		}
		return []pool{s}
	}
	return nil
}

func hashPool(state any) uint64 {
	h := fnv.New64a()
	for _, l := range state.(pool) {
		fmt.Fprintf(h, "%s|%s|%s|%s|%v|%d|%d|%d;", l.ID, l.Handle, l.Holder, l.RequestID, l.Ended, l.Lo, l.Hi, l.MaxExp)
	}
	return h.Sum64()
}

func short(id string) string {
	if len(id) > 6 {
		return id[:6]
	}
	return id
}

func describeOp(op Op) string {
	in, out := op.Input, op.Output
	var b strings.Builder
	fmt.Fprintf(&b, "%s@r%d", in.Kind, in.Replica)
	for _, f := range []struct{ k, v string }{{"holder", in.Holder}, {"rid", in.RequestID}, {"lease", short(in.LeaseID)}, {"handle", short(in.Handle)}} {
		if f.v != "" {
			fmt.Fprintf(&b, " %s=%s", f.k, f.v)
		}
	}
	if in.Wait {
		b.WriteString(" wait")
	}
	if in.Resume {
		b.WriteString(" resume")
	}
	fmt.Fprintf(&b, " -> %s", out.Result)
	if out.LeaseID != "" {
		fmt.Fprintf(&b, " %s", short(out.LeaseID))
	}
	if in.Kind == KindList {
		fmt.Fprintf(&b, " count=%d %v", out.Count, out.Holders)
	}
	if out.Code != "" {
		fmt.Fprintf(&b, " (%s)", out.Code)
	}
	return b.String()
}

func describePool(s pool) string {
	var parts []string
	for _, l := range s {
		name := short(l.ID)
		if name == "" {
			name = "ghost:" + l.Holder
		}
		if l.Ended {
			name += "(ended)"
		}
		parts = append(parts, fmt.Sprintf("%s[%.1fs..%.1fs]", name, float64(l.Lo)/1e9, float64(l.Hi)/1e9))
	}
	return "{" + strings.Join(parts, " ") + "}"
}
