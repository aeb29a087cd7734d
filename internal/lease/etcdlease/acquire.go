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

// waiter is this replica's key in the FIFO queue.
type waiter struct {
	key string
	rev int64 // its CreateRevision: the queue position
}

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
func (r *Registry) Acquire(ctx context.Context, holder, token string, wait bool) (lease.Lease, error) {
	if r.isClosed() {
		return lease.Lease{}, lease.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return lease.Lease{}, fmt.Errorf("etcdlease: acquire: %w", err)
	}
	if lease.ValidToken(token) {
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
	a, err := r.try(ctx, holder, nil)
	if err != nil {
		return lease.Lease{}, err
	}
	if a.ok {
		r.observe(lease.Observer.Granted)
		return a.lease, nil
	}
	if !wait {
		r.observe(lease.Observer.Refused)
		return lease.Lease{}, &lease.ExhaustedError{Capacity: r.cfg.Capacity, RetryAfter: r.retryAfter(ctx, a.slots, a.pinned)}
	}
	return r.wait(ctx, holder)
}

// wait queues behind older waiters (on any replica) and takes the first slot
// that frees once it is the oldest.
func (r *Registry) wait(ctx context.Context, holder string) (lease.Lease, error) {
	w, err := r.register(ctx, holder)
	if err != nil {
		return lease.Lease{}, err
	}
	// Counted once queued, so that Waiting == n means n keys are in line.
	r.mu.Lock()
	r.waiting++
	r.mu.Unlock()
	defer func() {
		if w != nil {
			r.unregister(w)
		}
		r.mu.Lock()
		r.waiting--
		r.mu.Unlock()
	}()
	for {
		a, err := r.try(ctx, holder, w)
		if err != nil {
			return lease.Lease{}, err
		}
		if a.ok {
			w = nil // the admission transaction deleted it
			r.observe(lease.Observer.Granted)
			return a.lease, nil
		}
		if a.lost {
			if w, err = r.register(ctx, holder); err != nil {
				return lease.Lease{}, err
			}
			continue
		}
		if err := r.await(ctx, a.rev); err != nil {
			return lease.Lease{}, err
		}
	}
}

// register puts a waiter key under this replica's session lease.
func (r *Registry) register(ctx context.Context, holder string) (*waiter, error) {
	for range 2 {
		sess, err := r.sessionLease(ctx)
		if err != nil {
			return nil, err
		}
		key := r.waitersPrefix() + randomHex(8)
		octx, cancel := r.opCtx(ctx)
		resp, err := r.cli.Put(octx, key, holder, clientv3.WithLease(sess))
		cancel()
		if isLeaseNotFound(err) {
			r.dropSession(sess)
			continue
		}
		if err != nil {
			return nil, r.fail(ctx, err)
		}
		return &waiter{key: key, rev: resp.Header.Revision}, nil
	}
	return nil, lease.ErrUnavailable
}

func (r *Registry) unregister(w *waiter) {
	ctx, cancel := r.opCtx(context.Background())
	_, _ = r.cli.Delete(ctx, w.key)
	cancel()
}

// await blocks until a slot or waiter key is deleted after revision rev, the
// poll interval passes, ctx ends or the registry closes.
func (r *Registry) await(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(rev + 1), clientv3.WithFilterPut()}
	slots := r.cli.Watch(wctx, r.slotsPrefix(), opts...)
	waiters := r.cli.Watch(wctx, r.waitersPrefix(), opts...)
	t := time.NewTimer(pollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
		return lease.ErrClosed
	case <-slots:
	case <-waiters:
	case <-t.C:
	}
	return nil
}

// try makes one attempt at a slot: a read to skip hopeless attempts, then a
// lease grant and the admission transaction. With w set it only succeeds if
// w is the oldest waiter; without, only if nobody waits.
func (r *Registry) try(ctx context.Context, holder string, w *waiter) (attempt, error) {
	if r.isClosed() {
		return attempt{}, lease.ErrClosed
	}
	// At most Capacity attempts of this replica run at once: a storm of
	// callers then costs etcd a read each, not a doomed grant, transaction
	// and revoke each. (Only an optimisation: admission is the transaction.)
	select {
	case r.attempts <- struct{}{}:
		defer func() { <-r.attempts }()
	case <-ctx.Done():
		return attempt{}, fmt.Errorf("etcdlease: %w", ctx.Err())
	case <-r.done:
		return attempt{}, lease.ErrClosed
	}
	gate := r.gate(w)

	// 1. Pre-check: is a slot visibly free and is it our turn? This read
	// admits nobody; it only spares etcd a grant and a failed transaction.
	octx, cancel := r.opCtx(ctx)
	reads := []clientv3.Op{
		clientv3.OpGet(r.slotsPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(r.pinsPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	}
	elseOps := reads
	if w != nil {
		elseOps = append(elseOps[:len(reads):len(reads)], clientv3.OpGet(w.key, clientv3.WithCountOnly()))
	}
	pre, err := r.cli.Txn(octx).If(gate...).Then(reads...).Else(elseOps...).Commit()
	cancel()
	if err != nil {
		return attempt{}, r.fail(ctx, err)
	}
	occupied := pre.Responses[0].GetResponseRange().Kvs
	pinned := pre.Responses[1].GetResponseRange().Kvs
	if !pre.Succeeded {
		lost := w != nil && pre.Responses[2].GetResponseRange().Count == 0
		return attempt{slots: occupied, pinned: pinned, rev: pre.Header.Revision, lost: lost}, nil
	}
	taken := make(map[int]bool, len(occupied))
	for _, kv := range occupied {
		if i, err := strconv.Atoi(strings.TrimPrefix(string(kv.Key), r.slotsPrefix())); err == nil {
			taken[i] = true
		}
	}
	order := make([]int, 0, r.cfg.Capacity)
	for i := range r.cfg.Capacity {
		if !taken[i] {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return attempt{slots: occupied, pinned: pinned, rev: pre.Header.Revision}, nil
	}
	// Slots that looked taken may have freed since: try them last.
	for i := range r.cfg.Capacity {
		if taken[i] {
			order = append(order, i)
		}
	}

	// 2. Grant the etcd lease the record will live on.
	now := time.Now()
	ttl := r.ttl
	if r.cfg.MaxAge < ttl {
		ttl = r.cfg.MaxAge
	}
	octx, cancel = r.opCtx(ctx)
	g, err := r.cli.Grant(octx, ttlSeconds(ttl))
	cancel()
	if err != nil {
		return attempt{}, r.fail(ctx, err)
	}
	token := newToken()
	rec := record{
		Handle:    newHandle(),
		Holder:    holder,
		Acquired:  now,
		MaxExpire: now.Add(r.cfg.MaxAge),
		TokenHash: hashToken(token),
	}

	// 3. The admission transaction(s): one round trip tries up to chunk
	// slots, each put guarded by CreateRevision(slot) == 0.
	var rev int64
	for start := 0; start < len(order); start += chunk {
		idx := order[start:min(start+chunk, len(order))]
		slot, resp, err := r.admit(ctx, gate, idx, rec, g.ID, w)
		if err != nil {
			r.revokeQuietly(g.ID)
			return attempt{}, r.fail(ctx, err)
		}
		rev = resp.Header.Revision
		if slot >= 0 {
			rec.Slot = slot
			exp := now.Add(time.Duration(g.TTL) * time.Second)
			return attempt{ok: true, lease: r.toLease(rec, token, exp, false)}, nil
		}
		if !resp.Succeeded { // gate closed (waiters, or no longer our turn)
			break
		}
	}
	r.revokeQuietly(g.ID)
	return attempt{slots: occupied, pinned: pinned, rev: rev}, nil
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
func (r *Registry) admit(ctx context.Context, gate []clientv3.Cmp, idx []int, rec record, id clientv3.LeaseID, w *waiter) (int, *clientv3.TxnResponse, error) {
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
		return ops
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
