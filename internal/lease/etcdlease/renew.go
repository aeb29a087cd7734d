package etcdlease

import (
	"context"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// Renew implements lease.Registry.
func (r *Registry) Renew(ctx context.Context, token string) (lease.Lease, error) {
	if r.isClosed() {
		return lease.Lease{}, lease.ErrClosed
	}
	if !lease.ValidToken(token) {
		return lease.Lease{}, lease.ErrNotFound
	}
	return r.renew(ctx, token)
}

func (r *Registry) renew(ctx context.Context, token string) (lease.Lease, error) {
	kv, rec, pinned, err := r.lookup(ctx, hashToken(token))
	if err != nil {
		return lease.Lease{}, err
	}
	now := time.Now()
	if now.Add(r.ttl).After(rec.MaxExpire) {
		return lease.Lease{}, lease.ErrTooOld
	}
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	resp, err := r.cli.KeepAliveOnce(octx, clientv3.LeaseID(kv.Lease))
	if isLeaseNotFound(err) {
		return lease.Lease{}, lease.ErrNotFound
	}
	if err != nil {
		return lease.Lease{}, r.fail(ctx, err)
	}
	return r.toLease(rec, token, now.Add(time.Duration(resp.TTL)*time.Second), pinned), nil
}

// Release implements lease.Registry.
func (r *Registry) Release(ctx context.Context, token string) error {
	if r.isClosed() {
		return lease.ErrClosed
	}
	if !lease.ValidToken(token) {
		return lease.ErrNotFound
	}
	kv, rec, _, err := r.lookup(ctx, hashToken(token))
	if err != nil {
		return err
	}
	return r.end(ctx, kv, rec, endReleased)
}

// Revoke implements lease.Registry.
func (r *Registry) Revoke(ctx context.Context, handle string) error {
	if r.isClosed() {
		return lease.ErrClosed
	}
	octx, cancel := r.opCtx(ctx)
	resp, err := r.cli.Get(octx, r.slotsPrefix(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return r.fail(ctx, err)
	}
	for _, kv := range resp.Kvs {
		if rec, ok := decode(kv); ok && rec.Handle == handle {
			return r.end(ctx, kv, rec, endRevoked)
		}
	}
	return lease.ErrNotFound
}

// The values of an ending marker: why the lease ended under its render.
const (
	endReleased = "released"
	endRevoked  = "revoked"
)

// end ends the lease of kv, its slot or its token key (one transaction put
// both, so they share the etcd lease and the create revision), in one
// transaction: an unpinned lease loses its token key (so no Pin can start
// on it) and then its etcd lease, which frees the slot; a pinned lease gets an ending marker
// instead, which the pinning replica watches: it stops the render, then
// revokes the etcd lease itself, so the slot frees only once the render has
// stopped, on whichever replica it runs.
func (r *Registry) end(ctx context.Context, kv *mvccpb.KeyValue, rec record, why string) error {
	id := clientv3.LeaseID(kv.Lease)
	h := rec.TokenHash
	octx, cancel := r.opCtx(ctx)
	resp, err := r.cli.Txn(octx).
		If(
			clientv3.Compare(clientv3.CreateRevision(r.tokenKey(h)), "=", kv.CreateRevision),
			clientv3.Compare(clientv3.CreateRevision(r.endingKey(h)), "=", 0),
		).
		Then(clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(r.pinKey(h)), "=", 0)},
			[]clientv3.Op{clientv3.OpDelete(r.tokenKey(h))},
			[]clientv3.Op{clientv3.OpPut(r.endingKey(h), why, clientv3.WithLease(id))},
		)).
		Commit()
	cancel()
	switch {
	case isLeaseNotFound(err):
		return lease.ErrNotFound
	case err != nil:
		return r.fail(ctx, err)
	case !resp.Succeeded:
		return lease.ErrNotFound // gone, or already ending
	case resp.Responses[0].GetResponseTxn().Succeeded:
		return r.revoke(ctx, id)
	}
	r.observe(lease.Observer.Released)
	return nil
}

// revoke frees the slot of a lease whose token key end has just deleted:
// the lease ended there. An etcd lease already gone is no failure: it
// expired since, or this is the etcd client's retry of a revoke whose
// reply was lost (a member dying under it), which etcd answers "not
// found".
func (r *Registry) revoke(ctx context.Context, id clientv3.LeaseID) error {
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	if _, err := r.cli.Revoke(octx, id); err != nil && !isLeaseNotFound(err) {
		return r.fail(ctx, err)
	}
	r.observe(lease.Observer.Released)
	return nil
}

// revokeQuietly revokes id, ignoring errors (etcd expires it anyway).
func (r *Registry) revokeQuietly(id clientv3.LeaseID) {
	ctx, cancel := r.opCtx(context.Background())
	_, _ = r.cli.Revoke(ctx, id)
	cancel()
}

// revokeAt revokes id at time at, from this replica (best effort: if the
// replica stops first, etcd's own expiry ends the lease later).
func (r *Registry) revokeAt(id clientv3.LeaseID, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(time.Until(at), func() {
		r.mu.Lock()
		if r.timers == nil {
			r.mu.Unlock()
			return
		}
		delete(r.timers, t)
		r.mu.Unlock()
		r.revokeQuietly(id)
	})
	r.timers[t] = struct{}{}
}
