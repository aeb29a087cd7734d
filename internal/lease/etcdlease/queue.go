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
