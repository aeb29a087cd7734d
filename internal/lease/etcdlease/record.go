package etcdlease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// record is what a slot and a token key hold. Never the token itself.
type record struct {
	Handle    string    `json:"handle"`
	Holder    string    `json:"holder"`
	Acquired  time.Time `json:"acquired"`
	MaxExpire time.Time `json:"max_expire"`
	Slot      int       `json:"slot"`
	TokenHash string    `json:"token_sha256"`
}

func decode(kv *mvccpb.KeyValue) (record, bool) {
	var rec record
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return rec, false
	}
	return rec, true
}

func (r *Registry) toLease(rec record, token string, expires time.Time, pinned bool) lease.Lease {
	if expires.After(rec.MaxExpire) && !pinned {
		expires = rec.MaxExpire
	}
	return lease.Lease{
		Token:        token,
		Handle:       rec.Handle,
		Holder:       rec.Holder,
		AcquiredAt:   rec.Acquired,
		ExpiresAt:    expires,
		MaxExpiresAt: rec.MaxExpire,
		TTL:          r.ttl,
		Pinned:       pinned,
	}
}

// lookup reads a token's record, etcd lease and pin marker in one round
// trip; a lease that is ending counts as not found.
func (r *Registry) lookup(ctx context.Context, h string) (kv *mvccpb.KeyValue, rec record, pinned bool, err error) {
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	resp, err := r.cli.Txn(octx).Then(
		clientv3.OpGet(r.tokenKey(h)),
		clientv3.OpGet(r.pinKey(h), clientv3.WithCountOnly()),
		clientv3.OpGet(r.endingKey(h), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return nil, rec, false, r.fail(ctx, err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	// A lease released or revoked under its render is gone for every
	// caller, though its slot stays taken until the render stops.
	if len(kvs) == 0 || resp.Responses[2].GetResponseRange().Count > 0 {
		return nil, rec, false, lease.ErrNotFound
	}
	rec, ok := decode(kvs[0])
	if !ok {
		return nil, rec, false, lease.ErrNotFound
	}
	return kvs[0], rec, resp.Responses[1].GetResponseRange().Count > 0, nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}
