package etcdlease

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// pollInterval bounds how long a waiter sleeps without a watch event.
const pollInterval = time.Second

// waiter is this replica's key in the FIFO queue.
type waiter struct {
	key string
	rev int64 // its CreateRevision: the queue position
}

// wait queues behind older waiters (on any replica) and takes the first slot
// that frees once it is the oldest.
func (r *Registry) wait(ctx context.Context, req lease.AcquireRequest) (lease.Lease, error) {
	holder := req.Holder
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
		a, err := r.try(ctx, req, w)
		if err != nil {
			return lease.Lease{}, err
		}
		if a.ok {
			w = nil // the admission transaction deleted it
			r.observe(lease.Observer.Granted)
			return a.lease, nil
		}
		if req.RequestID != "" {
			// Another attempt of the same request may have been granted.
			if l, ok, err := r.repeated(ctx, req); ok || err != nil {
				return l, err
			}
		}
		if a.lost {
			if w, err = r.register(ctx, holder); err != nil {
				return lease.Lease{}, err
			}
			continue
		}
		if err := r.await(ctx, w, a.rev); err != nil {
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
		key := r.waitersPrefix() + lease.NewHandle() // a random name, unique like a handle
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

// await blocks until w may be served: while an older waiter exists, until
// the one just ahead of w leaves; once w is the oldest, until a slot is
// deleted. Each departure so wakes one waiter, not every waiter, so N
// waiters cost O(N) watch events rather than O(N²). It also returns after
// the poll interval, when ctx ends or when the registry closes. rev is the
// revision w's last attempt was decided at.
func (r *Registry) await(ctx context.Context, w *waiter, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	octx, ocancel := r.opCtx(ctx)
	ahead, err := r.cli.Get(octx, r.waitersPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithMaxCreateRev(w.rev-1), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend),
		clientv3.WithLimit(1), clientv3.WithRev(rev))
	ocancel()
	var events clientv3.WatchChan
	switch {
	case err != nil:
		// Compacted or unreachable: fall back on the poll interval.
	case len(ahead.Kvs) == 1:
		events = r.cli.Watch(wctx, string(ahead.Kvs[0].Key), clientv3.WithRev(rev+1), clientv3.WithFilterPut())
	default:
		events = r.cli.Watch(wctx, r.slotsPrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithFilterPut())
	}
	t := time.NewTimer(pollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
		return lease.ErrClosed
	case resp := <-events:
		r.watchEvents.Add(int64(len(resp.Events)))
	case <-t.C:
	}
	return nil
}
