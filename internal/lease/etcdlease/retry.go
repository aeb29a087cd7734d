package etcdlease

import (
	"context"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// retryAfter is the time until the earliest of these slots' leases ends,
// leaving out pinned ones (whose etcd leases are in pinned); one TTL if
// every lease is pinned or etcd does not say. The earliest expiry is cached
// for hintFor so that a storm of refusals does not ask etcd each time.
func (r *Registry) retryAfter(ctx context.Context, slots, pinned []*mvccpb.KeyValue) time.Duration {
	skip := make(map[int64]bool, len(pinned))
	for _, kv := range pinned {
		skip[kv.Lease] = true
	}
	var unpinned []*mvccpb.KeyValue
	var key strings.Builder
	for _, kv := range slots {
		if !skip[kv.Lease] {
			unpinned = append(unpinned, kv)
			key.WriteString(strconv.FormatInt(kv.Lease, 16))
			key.WriteByte(',')
		}
	}
	now := time.Now()
	r.hintMu.Lock()
	cached := r.hintKey == key.String() && now.Sub(r.hintAt) < hintFor
	until := r.hintUntil
	r.hintMu.Unlock()
	if !cached {
		until = time.Time{}
		if ttls, err := r.timesToLive(ctx, unpinned); err == nil {
			for _, d := range ttls {
				if d >= 0 && (until.IsZero() || now.Add(d).Before(until)) {
					until = now.Add(d)
				}
			}
			r.hintMu.Lock()
			r.hintKey, r.hintAt, r.hintUntil = key.String(), now, until
			r.hintMu.Unlock()
		}
	}
	if until.IsZero() {
		return r.ttl
	}
	// TimeToLive rounds down to whole seconds: never hint less than 0.5 s.
	return min(max(until.Sub(now), 500*time.Millisecond), r.ttl)
}

// hintFor is how long a computed RetryAfter hint is reused.
const hintFor = 250 * time.Millisecond
