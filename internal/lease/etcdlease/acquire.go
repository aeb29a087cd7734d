package etcdlease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// chunk is the number of slots tried by one transaction (nesting depth).
const chunk = 32

// attempt is the outcome of one try for a slot.
type attempt struct {
	ok    bool
	lease lease.Lease
	// When !ok:
	slots  []*mvccpb.KeyValue // occupied slots seen (for RetryAfter), maybe nil
	pinned []*mvccpb.KeyValue // pin markers seen (their Lease marks pinned slots)
	rev    int64              // etcd revision the refusal was decided at
	lost   bool               // the waiter key is gone (session expired)
}

// Acquire implements lease.Registry.
func (r *Registry) Acquire(ctx context.Context, req lease.AcquireRequest) (lease.Lease, error) {
	if r.isClosed() {
		return lease.Lease{}, lease.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return lease.Lease{}, fmt.Errorf("etcdlease: acquire: %w", err)
	}
	if req.RequestID != "" {
		if l, ok, err := r.repeated(ctx, req); ok || err != nil {
			return l, err
		}
	}
	if token := req.Token; lease.ValidToken(token) {
		l, err := r.renew(ctx, token)
		switch {
		case err == nil:
			return l, nil
		case errors.Is(err, lease.ErrTooOld):
			// Release reports it to the observer as a release.
			if err := r.Release(ctx, token); err != nil && !errors.Is(err, lease.ErrNotFound) {
				return lease.Lease{}, err
			}
		case errors.Is(err, lease.ErrNotFound):
		default:
			return lease.Lease{}, err
		}
	}
	a, err := r.try(ctx, req, nil)
	if err != nil {
		return lease.Lease{}, err
	}
	if a.ok {
		r.observe(lease.Observer.Granted)
		return a.lease, nil
	}
	full := false
	if req.Wait {
		if full, err = r.lineFull(ctx); err != nil {
			return lease.Lease{}, err
		}
	}
	if !req.Wait || full {
		r.observe(lease.Observer.Refused)
		return lease.Lease{}, &lease.ExhaustedError{Capacity: r.cfg.Capacity, RetryAfter: r.retryAfter(ctx, a.slots, a.pinned),
			Queue: full, MaxWaiting: r.cfg.MaxWaiting}
	}
	return r.wait(ctx, req)
}

// repeated answers an acquire whose request id already holds a live lease:
// that lease, renewed when it can be. ok is false when there is none.
func (r *Registry) repeated(ctx context.Context, req lease.AcquireRequest) (l lease.Lease, ok bool, err error) {
	octx, cancel := r.opCtx(ctx)
	resp, err := r.cli.Get(octx, r.requestKey(lease.RequestKey(req.Holder, req.RequestID)))
	cancel()
	if err != nil {
		return l, false, r.fail(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return l, false, nil
	}
	token := lease.OpenToken(string(resp.Kvs[0].Value), req.Holder, req.RequestID)
	l, err = r.renew(ctx, token)
	switch {
	case err == nil:
		return l, true, nil
	case errors.Is(err, lease.ErrTooOld):
		// Still live until its current expiry: the same lease, unrenewed.
		kv, rec, pinned, err := r.lookup(ctx, hashToken(token))
		if err != nil {
			return l, false, ignoreNotFound(err)
		}
		ttl, err := r.cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
		if err != nil {
			return l, false, r.fail(ctx, err)
		}
		return r.toLease(rec, token, time.Now().Add(time.Duration(ttl.TTL)*time.Second), pinned), true, nil
	}
	return l, false, ignoreNotFound(err)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, lease.ErrNotFound) {
		return nil
	}
	return err
}

// lineFull reports whether MaxWaiting callers already wait, on all
// replicas. The count is read, not reserved: replicas queueing at the same
// instant can pass the bound by one each.
func (r *Registry) lineFull(ctx context.Context) (bool, error) {
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	resp, err := r.cli.Get(octx, r.waitersPrefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return false, r.fail(ctx, err)
	}
	return resp.Count >= int64(r.cfg.MaxWaiting), nil
}

// try makes one attempt at a slot: a read to skip hopeless attempts, then a
// lease grant and the admission transaction. With w set it only succeeds if
// w is the oldest waiter; without, only if nobody waits.
func (r *Registry) try(ctx context.Context, req lease.AcquireRequest, w *waiter) (attempt, error) {
	if r.isClosed() {
		return attempt{}, lease.ErrClosed
	}
	leave, err := r.enterAttempt(ctx)
	if err != nil {
		return attempt{}, err
	}
	defer leave()
	gate := r.gate(w)
	if req.RequestID != "" {
		// Two attempts of one request racing: only one may take a slot.
		gate = append(gate, clientv3.Compare(clientv3.CreateRevision(r.requestKey(lease.RequestKey(req.Holder, req.RequestID))), "=", 0))
	}
	v, err := r.precheck(ctx, gate, w)
	if err != nil {
		return attempt{}, err
	}
	order := r.slotOrder(v.occupied)
	if !v.open || order == nil {
		return v.refusal(v.rev), nil
	}
	now := time.Now()
	g, err := r.grant(ctx)
	if err != nil {
		return attempt{}, err
	}
	token := lease.NewToken()
	rec := record{
		Handle:    lease.NewHandle(),
		Holder:    req.Holder,
		Acquired:  now,
		MaxExpire: now.Add(r.cfg.MaxAge),
		TokenHash: hashToken(token),
	}
	var extra []clientv3.Op
	if req.RequestID != "" {
		k := r.requestKey(lease.RequestKey(req.Holder, req.RequestID))
		extra = append(extra, clientv3.OpPut(k, lease.SealToken(token, req.Holder, req.RequestID), clientv3.WithLease(g.ID)))
	}
	slot, rev, err := r.admitAny(ctx, gate, order, rec, g.ID, w, extra)
	if err != nil {
		r.revokeQuietly(g.ID)
		return attempt{}, r.fail(ctx, err)
	}
	if slot < 0 {
		r.revokeQuietly(g.ID)
		return v.refusal(rev), nil
	}
	rec.Slot = slot
	exp := now.Add(time.Duration(g.TTL) * time.Second)
	return attempt{ok: true, lease: r.toLease(rec, token, exp, false)}, nil
}

// enterAttempt waits for one of this replica's Capacity attempt places and
// returns the function that leaves it. A storm of callers then costs etcd a
// read each, not a doomed grant, transaction and revoke each. (Only an
// optimisation: admission is the transaction.)
func (r *Registry) enterAttempt(ctx context.Context) (leave func(), err error) {
	select {
	case r.attempts <- struct{}{}:
		return func() { <-r.attempts }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("etcdlease: %w", ctx.Err())
	case <-r.done:
		return nil, lease.ErrClosed
	}
}

// view is what the pre-check read saw.
type view struct {
	open     bool               // the gate held: nobody waits, or it is w's turn
	occupied []*mvccpb.KeyValue // slot keys
	pinned   []*mvccpb.KeyValue // pin markers
	rev      int64              // the revision read at
	lost     bool               // w's key is gone (its session expired)
}

// refusal is the attempt that failed after seeing v, decided at rev.
func (v view) refusal(rev int64) attempt {
	return attempt{slots: v.occupied, pinned: v.pinned, rev: rev, lost: v.lost}
}

// precheck reads whether a slot is visibly free and whether it is our turn.
// This read admits nobody; it only spares etcd a grant and a failed
// transaction.
func (r *Registry) precheck(ctx context.Context, gate []clientv3.Cmp, w *waiter) (view, error) {
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	reads := []clientv3.Op{
		clientv3.OpGet(r.slotsPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(r.pinsPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	}
	elseOps := reads
	if w != nil {
		elseOps = append(elseOps[:len(reads):len(reads)], clientv3.OpGet(w.key, clientv3.WithCountOnly()))
	}
	pre, err := r.cli.Txn(octx).If(gate...).Then(reads...).Else(elseOps...).Commit()
	if err != nil {
		return view{}, r.fail(ctx, err)
	}
	return view{
		open:     pre.Succeeded,
		occupied: pre.Responses[0].GetResponseRange().Kvs,
		pinned:   pre.Responses[1].GetResponseRange().Kvs,
		rev:      pre.Header.Revision,
		lost:     !pre.Succeeded && w != nil && pre.Responses[2].GetResponseRange().Count == 0,
	}, nil
}

// slotOrder lists the slots to try: the ones that looked free, then the ones
// that looked taken (they may have freed since). It is nil when none looked
// free.
func (r *Registry) slotOrder(occupied []*mvccpb.KeyValue) []int {
	taken := make(map[int]bool, len(occupied))
	for _, kv := range occupied {
		if i, err := strconv.Atoi(strings.TrimPrefix(string(kv.Key), r.slotsPrefix())); err == nil {
			taken[i] = true
		}
	}
	var order []int
	for i := range r.cfg.Capacity {
		if !taken[i] {
			order = append(order, i)
		}
	}
	if order == nil {
		return nil
	}
	for i := range r.cfg.Capacity {
		if taken[i] {
			order = append(order, i)
		}
	}
	return order
}

// grant creates the etcd lease a new record will live on: one TTL, or the
// maximum age if that is shorter.
func (r *Registry) grant(ctx context.Context) (*clientv3.LeaseGrantResponse, error) {
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	g, err := r.cli.Grant(octx, ttlSeconds(min(r.ttl, r.cfg.MaxAge)))
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	return g, nil
}

// admitAny runs the admission transactions: one round trip tries up to
// chunk slots of order, each put guarded by CreateRevision(slot) == 0. It
// returns the slot taken (-1 for none) and the revision of the last answer.
func (r *Registry) admitAny(ctx context.Context, gate []clientv3.Cmp, order []int, rec record, id clientv3.LeaseID, w *waiter, extra []clientv3.Op) (slot int, rev int64, err error) {
	for start := 0; start < len(order); start += chunk {
		idx := order[start:min(start+chunk, len(order))]
		slot, resp, err := r.admit(ctx, gate, idx, rec, id, w, extra)
		if err != nil {
			return -1, 0, err
		}
		rev = resp.Header.Revision
		if slot >= 0 || !resp.Succeeded { // taken, or the gate closed (waiters, or no longer our turn)
			return slot, rev, nil
		}
	}
	return -1, rev, nil
}

// gate is the condition for taking a slot: nobody waits (w == nil), or w is
// still queued and no waiter key is older than it.
func (r *Registry) gate(w *waiter) []clientv3.Cmp {
	if w == nil {
		return []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(r.waitersPrefix()), "=", 0).WithPrefix()}
	}
	return []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(w.key), "=", w.rev),
		clientv3.Compare(clientv3.CreateRevision(r.waitersPrefix()), ">", w.rev-1).WithPrefix(),
	}
}

// admit runs one transaction: if gate holds, take the first free slot of idx.
// It returns the slot taken, or -1.
func (r *Registry) admit(ctx context.Context, gate []clientv3.Cmp, idx []int, rec record, id clientv3.LeaseID, w *waiter, extra []clientv3.Op) (int, *clientv3.TxnResponse, error) {
	mk := func(i int) []clientv3.Op {
		rec := rec
		rec.Slot = i
		val, _ := json.Marshal(rec)
		ops := []clientv3.Op{
			clientv3.OpPut(r.slotKey(i), string(val), clientv3.WithLease(id)),
			clientv3.OpPut(r.tokenKey(rec.TokenHash), string(val), clientv3.WithLease(id)),
		}
		if w != nil {
			ops = append(ops, clientv3.OpDelete(w.key))
		}
		return append(ops, extra...)
	}
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	resp, err := r.cli.Txn(octx).If(gate...).Then(r.chain(idx, mk)).Commit()
	if err != nil {
		return -1, nil, err
	}
	if !resp.Succeeded {
		return -1, resp, nil
	}
	t := resp.Responses[0].GetResponseTxn()
	for _, i := range idx {
		if t == nil {
			break
		}
		if t.Succeeded {
			return i, resp, nil
		}
		if len(t.Responses) == 0 {
			break
		}
		t = t.Responses[0].GetResponseTxn()
	}
	return -1, resp, nil
}

// chain nests one transaction per slot: if slot idx[0] is free take it, else
// try idx[1:].
func (r *Registry) chain(idx []int, mk func(int) []clientv3.Op) clientv3.Op {
	var els []clientv3.Op
	if len(idx) > 1 {
		els = []clientv3.Op{r.chain(idx[1:], mk)}
	}
	return clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(r.slotKey(idx[0])), "=", 0)},
		mk(idx[0]),
		els,
	)
}
