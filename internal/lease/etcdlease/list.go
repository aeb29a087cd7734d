package etcdlease

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// List implements lease.Registry. ExpiresAt comes from etcd's remaining TTL
// (whole seconds, rounded down).
func (r *Registry) List(ctx context.Context) (lease.Snapshot, error) {
	if r.isClosed() {
		return lease.Snapshot{}, lease.ErrClosed
	}
	octx, cancel := r.opCtx(ctx)
	resp, err := r.cli.Txn(octx).Then(
		clientv3.OpGet(r.slotsPrefix(), clientv3.WithPrefix()),
		clientv3.OpGet(r.pinsPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	cancel()
	if err != nil {
		return lease.Snapshot{}, r.fail(ctx, err)
	}
	slots := resp.Responses[0].GetResponseRange().Kvs
	pins := make(map[string]bool)
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		pins[strings.TrimPrefix(string(kv.Key), r.pinsPrefix())] = true
	}
	now := time.Now()
	ttls, err := r.timesToLive(ctx, slots)
	if err != nil {
		return lease.Snapshot{}, err
	}
	type item struct {
		l   lease.Lease
		rev int64
	}
	var items []item
	for i, kv := range slots {
		rec, ok := decode(kv)
		if !ok || ttls[i] < 0 {
			continue
		}
		l := r.toLease(rec, "", now.Add(ttls[i]), pins[rec.TokenHash])
		items = append(items, item{l, kv.CreateRevision})
	}
	sort.Slice(items, func(i, j int) bool {
		if !items[i].l.AcquiredAt.Equal(items[j].l.AcquiredAt) {
			return items[i].l.AcquiredAt.Before(items[j].l.AcquiredAt)
		}
		return items[i].rev < items[j].rev
	})
	snap := lease.Snapshot{Capacity: r.cfg.Capacity, Leases: make([]lease.Lease, 0, len(items))}
	for _, it := range items {
		snap.Leases = append(snap.Leases, it.l)
	}
	r.mu.Lock()
	snap.Waiting = r.waiting
	r.mu.Unlock()
	return snap, nil
}

// timesToLive asks etcd, concurrently, for the remaining TTL of each kv's
// lease; -1 for leases already gone.
func (r *Registry) timesToLive(ctx context.Context, kvs []*mvccpb.KeyValue) ([]time.Duration, error) {
	out := make([]time.Duration, len(kvs))
	errs := make([]error, len(kvs))
	var wg sync.WaitGroup
	for i, kv := range kvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			octx, cancel := r.opCtx(ctx)
			defer cancel()
			resp, err := r.cli.TimeToLive(octx, clientv3.LeaseID(kv.Lease))
			switch {
			case isLeaseNotFound(err):
				out[i] = -1
			case err != nil:
				errs[i] = err
			case resp.TTL < 0:
				out[i] = -1
			default:
				out[i] = time.Duration(resp.TTL) * time.Second
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, r.fail(ctx, err)
		}
	}
	return out, nil
}
