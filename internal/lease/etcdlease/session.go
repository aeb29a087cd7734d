package etcdlease

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// sessionLoop keeps this replica's waiter session lease alive while it has
// waiters; without waiters it is left to expire and granted anew on demand.
func (r *Registry) sessionLoop() {
	defer r.wg.Done()
	every := r.sessionTTL() / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		r.mu.Lock()
		sess, n := r.session, r.waiting
		r.mu.Unlock()
		if sess == 0 || n == 0 {
			continue
		}
		ctx, cancel := r.opCtx(context.Background())
		_ = r.keepSession(ctx, sess)
		cancel()
	}
}

// keepSession sends one keep-alive for the session lease id.
func (r *Registry) keepSession(ctx context.Context, id clientv3.LeaseID) error {
	at := time.Now()
	_, err := r.cli.KeepAliveOnce(ctx, id)
	switch {
	case isLeaseNotFound(err):
		r.dropSession(id)
	case err == nil:
		r.mu.Lock()
		if r.session == id {
			r.sessionAt = at
		}
		r.mu.Unlock()
	}
	return err
}

func (r *Registry) sessionTTL() time.Duration { return roundTTL(r.opt.sessionTTL) }

func (r *Registry) dropSession(id clientv3.LeaseID) {
	r.mu.Lock()
	if r.session == id {
		r.session = 0
	}
	r.mu.Unlock()
}

// sessionLease returns this replica's waiter session lease, granting one if
// needed.
func (r *Registry) sessionLease(ctx context.Context) (clientv3.LeaseID, error) {
	r.mu.Lock()
	id, at := r.session, r.sessionAt
	r.mu.Unlock()
	if id != 0 {
		if time.Since(at) < r.sessionTTL()/3 {
			return id, nil
		}
		// Idle for a while (no waiters, no keep-alives): make sure it is
		// not about to expire under the new waiter's key.
		octx, cancel := r.opCtx(ctx)
		err := r.keepSession(octx, id)
		cancel()
		if err == nil {
			return id, nil
		}
		if !isLeaseNotFound(err) {
			return 0, r.fail(ctx, err)
		}
	}
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	at = time.Now()
	resp, err := r.cli.Grant(octx, ttlSeconds(r.sessionTTL()))
	if err != nil {
		return 0, r.fail(ctx, err)
	}
	r.mu.Lock()
	cur, closed := r.session, r.closed
	if !closed && cur == 0 {
		r.session, r.sessionAt = resp.ID, at
	}
	r.mu.Unlock()
	switch {
	case closed:
		r.revokeQuietly(resp.ID)
		return 0, lease.ErrClosed
	case cur != 0: // lost a race: use the winner's
		r.revokeQuietly(resp.ID)
		return cur, nil
	}
	return resp.ID, nil
}
