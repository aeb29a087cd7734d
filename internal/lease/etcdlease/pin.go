package etcdlease

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// Pin implements lease.Registry. The pin is a marker key on the lease's etcd
// lease (so a second Pin from any replica fails with lease.ErrBusy) plus a
// loop in this replica that keeps the etcd lease alive every TTL/3 and
// watches for the lease ending under the pin: an ending marker (Release or
// Revoke on any replica) or the token key's deletion. If keep-alives go
// unanswered for the TTL less a safety margin, the pin is lost with
// lease.ErrFenced before etcd could expire the lease and hand its slot on.
func (r *Registry) Pin(ctx context.Context, token string) (*lease.Pin, error) {
	if r.isClosed() {
		return nil, lease.ErrClosed
	}
	if !lease.ValidToken(token) {
		return nil, lease.ErrNotFound
	}
	h := hashToken(token)
	kv, rec, pinned, err := r.lookup(ctx, h)
	if err != nil {
		return nil, err
	}
	if pinned {
		return nil, lease.ErrBusy
	}
	now := time.Now()
	if !now.Before(rec.MaxExpire) {
		return nil, lease.ErrNotFound
	}
	id := clientv3.LeaseID(kv.Lease)
	pinID := lease.NewHandle() // a random name, unique like a handle
	octx, cancel := r.opCtx(ctx)
	resp, err := r.cli.Txn(octx).
		If(
			clientv3.Compare(clientv3.CreateRevision(r.pinKey(h)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(r.tokenKey(h)), "=", kv.CreateRevision),
			clientv3.Compare(clientv3.CreateRevision(r.endingKey(h)), "=", 0),
		).
		Then(clientv3.OpPut(r.pinKey(h), pinID, clientv3.WithLease(id))).
		Else(clientv3.OpGet(r.pinKey(h), clientv3.WithCountOnly())).
		Commit()
	cancel()
	if err != nil {
		if isLeaseNotFound(err) {
			return nil, lease.ErrNotFound
		}
		return nil, r.fail(ctx, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return nil, lease.ErrBusy
		}
		return nil, lease.ErrNotFound
	}
	p := &pin{r: r, id: id, hash: h, val: pinID, rec: rec, rev: resp.Header.Revision, stop: make(chan struct{}), done: make(chan struct{})}
	// Refresh now so the pin starts with a full TTL.
	sent := time.Now()
	octx, cancel = r.opCtx(ctx)
	ka, err := r.cli.KeepAliveOnce(octx, id)
	cancel()
	if err != nil {
		close(p.done)
		p.cleanup()
		if isLeaseNotFound(err) {
			return nil, lease.ErrNotFound
		}
		return nil, r.fail(ctx, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		close(p.done)
		p.cleanup()
		return nil, lease.ErrClosed
	}
	r.wg.Add(1)
	r.mu.Unlock()
	l := r.toLease(rec, token, now.Add(time.Duration(ka.TTL)*time.Second), true)
	p.pin = lease.NewPin(l, p.unpin)
	go p.loop(sent)
	return p.pin, nil
}

// fenceMargin is how long before the etcd lease could expire a pin whose
// keep-alives go unanswered is given up: the time the render needs to
// stop (its encoders killed and reaped) with room to spare.
func (r *Registry) fenceMargin() time.Duration { return min(r.ttl/3, 2*time.Second) }

type pin struct {
	r    *Registry
	pin  *lease.Pin
	id   clientv3.LeaseID
	hash string
	val  string
	rec  record
	rev  int64 // the revision the pin was put at: watches start after it
	stop chan struct{}
	done chan struct{}
}

// loop keeps the etcd lease alive until unpin or Close, and loses the pin
// when the lease ends under it or cannot be proven alive. lastOK is when the
// last answered keep-alive was sent: etcd cannot expire the lease before
// lastOK + TTL.
func (p *pin) loop(lastOK time.Time) {
	defer p.r.wg.Done()
	defer close(p.done)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := p.watchEnd(wctx)
	tick := time.NewTicker(max(p.r.ttl/3, 500*time.Millisecond))
	defer tick.Stop()
	fence := time.NewTimer(time.Until(lastOK.Add(p.r.ttl - p.r.fenceMargin())))
	defer fence.Stop()
	for {
		select {
		case <-p.r.done:
			return
		case <-p.stop:
			return
		case reason := <-ended:
			p.pin.Lose(reason)
			return
		case <-fence.C:
			p.pin.Lose(lease.ErrFenced)
			return
		case <-tick.C:
		}
		sent := time.Now()
		ctx, cancelKA := p.r.opCtx(wctx)
		ctx, cancelFence := context.WithDeadline(ctx, lastOK.Add(p.r.ttl-p.r.fenceMargin()))
		_, err := p.r.cli.KeepAliveOnce(ctx, p.id)
		cancelFence()
		cancelKA()
		switch {
		case err == nil:
			lastOK = sent
			fence.Reset(time.Until(lastOK.Add(p.r.ttl - p.r.fenceMargin())))
		case isLeaseNotFound(err):
			p.pin.Lose(p.endReason())
			return
		}
		// Other errors: etcd unreachable; the fence timer decides.
	}
}

// watchEnd reports, once, why the lease ended under the pin: its ending
// marker appeared (released or revoked on any replica) or its token key
// was deleted (the etcd lease is gone).
func (p *pin) watchEnd(ctx context.Context) <-chan error {
	out := make(chan error, 1)
	r := p.r
	ctx = clientv3.WithRequireLeader(ctx)
	// Watch blocks while etcd is unreachable, so it is opened here, apart
	// from the keep-alive loop, which must go on to fence.
	go func() {
		ending := r.cli.Watch(ctx, r.endingKey(p.hash), clientv3.WithRev(p.rev+1))
		token := r.cli.Watch(ctx, r.tokenKey(p.hash), clientv3.WithRev(p.rev+1), clientv3.WithFilterPut())
		for {
			var resp clientv3.WatchResponse
			var ok bool
			select {
			case <-ctx.Done():
				return
			case resp, ok = <-ending:
			case resp, ok = <-token:
			}
			if !ok {
				return // the watch ended with ctx; keep-alives still fence
			}
			for _, ev := range resp.Events {
				reason := lease.ErrReleased
				switch {
				case ev.Type == clientv3.EventTypePut && string(ev.Kv.Value) == endRevoked:
					reason = lease.ErrRevoked
				case ev.Type == clientv3.EventTypeDelete:
					reason = p.endReason()
				}
				out <- reason
				return
			}
		}
	}()
	return out
}

// endReason reads why a lease that vanished under its pin ended: its ending
// marker if one was written before the etcd lease went, else released.
func (p *pin) endReason() error {
	ctx, cancel := p.r.opCtx(context.Background())
	defer cancel()
	resp, err := p.r.cli.Get(ctx, p.r.endingKey(p.hash), clientv3.WithRev(0))
	if err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == endRevoked {
		return lease.ErrRevoked
	}
	return lease.ErrReleased
}

// unpin stops the loop, then ends the pin: a lease released or revoked
// under it is revoked now (its slot frees); any other, fenced ones included,
// is renewed to min(now+TTL, MaxExpiresAt) if etcd still holds it. Errors are ignored: etcd ends the lease one TTL after the
// last keep-alive anyway.
func (p *pin) unpin() {
	close(p.stop)
	<-p.done
	p.cleanup()
}

func (p *pin) cleanup() {
	r := p.r
	ctx, cancel := r.opCtx(context.Background())
	resp, err := r.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(r.pinKey(p.hash)), "=", p.val)).
		Then(
			clientv3.OpDelete(r.pinKey(p.hash)),
			clientv3.OpGet(r.endingKey(p.hash), clientv3.WithCountOnly()),
		).
		Commit()
	cancel()
	// A lease released or revoked under the pin ends here. A fenced one is
	// not revoked: the render stopped because its lease could not be proven
	// alive, but if etcd kept it, it is still its holder's, renewed below.
	ending := false
	if p.pin != nil {
		why := p.pin.Err()
		ending = errors.Is(why, lease.ErrReleased) || errors.Is(why, lease.ErrRevoked)
	}
	if err == nil && resp.Succeeded && resp.Responses[1].GetResponseRange().Count > 0 {
		ending = true
	}
	now := time.Now()
	if ending || !now.Before(p.rec.MaxExpire) {
		r.revokeQuietly(p.id)
		return
	}
	if p.pin == nil {
		return // Pin failed before the pin was handed out
	}
	ctx, cancel = r.opCtx(context.Background())
	_, err = r.cli.KeepAliveOnce(ctx, p.id)
	cancel()
	if err == nil && now.Add(r.ttl).After(p.rec.MaxExpire) {
		r.revokeAt(p.id, p.rec.MaxExpire)
	}
}
