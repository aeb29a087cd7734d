package etcdlease

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// Pin implements lease.Registry. The pin is a marker key on the lease's etcd
// lease (so a second Pin from any replica fails with lease.ErrBusy) plus a
// keep-alive loop in this replica every TTL/3 until unpin.
func (r *Registry) Pin(ctx context.Context, token string) (lease.Lease, func(), error) {
	if r.isClosed() {
		return lease.Lease{}, nil, lease.ErrClosed
	}
	if !lease.ValidToken(token) {
		return lease.Lease{}, nil, lease.ErrNotFound
	}
	h := hashToken(token)
	kv, rec, pinned, err := r.lookup(ctx, h)
	if err != nil {
		return lease.Lease{}, nil, err
	}
	if pinned {
		return lease.Lease{}, nil, lease.ErrBusy
	}
	now := time.Now()
	if !now.Before(rec.MaxExpire) {
		return lease.Lease{}, nil, lease.ErrNotFound
	}
	id := clientv3.LeaseID(kv.Lease)
	pinID := lease.NewHandle() // a random name, unique like a handle
	octx, cancel := r.opCtx(ctx)
	resp, err := r.cli.Txn(octx).
		If(
			clientv3.Compare(clientv3.CreateRevision(r.pinKey(h)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(r.tokenKey(h)), "=", kv.CreateRevision),
		).
		Then(clientv3.OpPut(r.pinKey(h), pinID, clientv3.WithLease(id))).
		Else(clientv3.OpGet(r.pinKey(h), clientv3.WithCountOnly())).
		Commit()
	cancel()
	if err != nil {
		if isLeaseNotFound(err) {
			return lease.Lease{}, nil, lease.ErrNotFound
		}
		return lease.Lease{}, nil, r.fail(ctx, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return lease.Lease{}, nil, lease.ErrBusy
		}
		return lease.Lease{}, nil, lease.ErrNotFound
	}
	p := &pin{r: r, id: id, key: r.pinKey(h), val: pinID, rec: rec, stop: make(chan struct{}), done: make(chan struct{})}
	// Refresh now so the pin starts with a full TTL.
	octx, cancel = r.opCtx(ctx)
	ka, err := r.cli.KeepAliveOnce(octx, id)
	cancel()
	if err != nil {
		close(p.done)
		p.cleanup(false)
		if isLeaseNotFound(err) {
			return lease.Lease{}, nil, lease.ErrNotFound
		}
		return lease.Lease{}, nil, r.fail(ctx, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		close(p.done)
		p.cleanup(false)
		return lease.Lease{}, nil, lease.ErrClosed
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go p.loop()
	l := r.toLease(rec, token, now.Add(time.Duration(ka.TTL)*time.Second), true)
	return l, p.unpin, nil
}

type pin struct {
	r    *Registry
	id   clientv3.LeaseID
	key  string
	val  string
	rec  record
	once sync.Once
	stop chan struct{}
	done chan struct{}
}

// loop keeps the etcd lease alive until unpin, Close, or the lease is gone.
func (p *pin) loop() {
	defer p.r.wg.Done()
	defer close(p.done)
	t := time.NewTicker(max(p.r.ttl/3, 500*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.r.done:
			return
		case <-p.stop:
			return
		case <-t.C:
		}
		ctx, cancel := p.r.opCtx(context.Background())
		_, err := p.r.cli.KeepAliveOnce(ctx, p.id)
		cancel()
		if isLeaseNotFound(err) {
			return // released or revoked meanwhile
		}
		// Other errors: etcd unreachable; try again next tick.
	}
}

// unpin stops the keep-alive, removes the marker and renews the lease to
// min(now+TTL, MaxExpiresAt). Errors are ignored: etcd ends the lease one
// TTL after the last keep-alive anyway.
func (p *pin) unpin() {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.cleanup(true)
	})
}

func (p *pin) cleanup(renew bool) {
	r := p.r
	ctx, cancel := r.opCtx(context.Background())
	_, _ = r.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(p.key), "=", p.val)).
		Then(clientv3.OpDelete(p.key)).
		Commit()
	cancel()
	if !renew {
		return
	}
	now := time.Now()
	if !now.Before(p.rec.MaxExpire) {
		r.revokeQuietly(p.id)
		return
	}
	ctx, cancel = r.opCtx(context.Background())
	_, err := r.cli.KeepAliveOnce(ctx, p.id)
	cancel()
	if err == nil && now.Add(r.ttl).After(p.rec.MaxExpire) {
		r.revokeAt(p.id, p.rec.MaxExpire)
	}
}
