package etcdlease

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/whirl-dev/whirl/internal/lease"
)

// Defaults for the options.
const (
	DefaultOpTimeout  = 2 * time.Second
	DefaultSessionTTL = 3 * time.Second
	// MinTTL is the shortest lease TTL etcd grants with its default election
	// timeout; shorter TTLs are raised to it.
	MinTTL = 2 * time.Second
)

// chunk is the number of slots tried by one transaction (nesting depth).
const chunk = 32

// pollInterval bounds how long a waiter sleeps without a watch event.
const pollInterval = time.Second

// ErrConfigMismatch is returned by New when the pool under the prefix was
// created with a different capacity.
var ErrConfigMismatch = errors.New("etcdlease: capacity differs from the one stored in etcd")

// Option tunes a Registry.
type Option func(*options)

type options struct {
	opTimeout  time.Duration
	sessionTTL time.Duration
}

// WithOpTimeout bounds every single etcd call (default 2 s). When it passes,
// the call fails with lease.ErrUnavailable.
func WithOpTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.opTimeout = d
		}
	}
}

// WithSessionTTL sets the TTL of the etcd lease that carries this replica's
// waiter keys (default 3 s, at least 2 s): how long a crashed replica's
// waiters can hold back the queue.
func WithSessionTTL(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.sessionTTL = d
		}
	}
}

// Registry is a lease.Registry backed by etcd. Several Registries (replicas)
// on the same client endpoints and prefix share one pool.
type Registry struct {
	cli    *clientv3.Client
	cfg    lease.Config
	ttl    time.Duration // effective TTL: whole seconds, at least MinTTL
	prefix string
	opt    options

	attempts  chan struct{} // semaphore: in-flight slot attempts
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu      sync.Mutex
	obs     lease.Observer
	closed  bool
	waiting int
	session clientv3.LeaseID
	// sessionAt is when the session lease was last granted or kept alive.
	sessionAt time.Time
	timers    map[*time.Timer]struct{}

	// A short-lived cache of the earliest expiry, for RetryAfter, keyed by
	// the set of etcd leases it was computed from.
	hintMu    sync.Mutex
	hintKey   string
	hintAt    time.Time
	hintUntil time.Time // zero: unknown
}

var _ lease.Registry = (*Registry)(nil)

// record is what a slot and a token key hold. Never the token itself.
type record struct {
	Handle    string    `json:"handle"`
	Holder    string    `json:"holder"`
	Acquired  time.Time `json:"acquired"`
	MaxExpire time.Time `json:"max_expire"`
	Slot      int       `json:"slot"`
	TokenHash string    `json:"token_sha256"`
}

type storedConfig struct {
	Capacity int `json:"capacity"`
}

// New returns a Registry for the pool under prefix (e.g. "/whirl/leases").
// It records the capacity under prefix/config on first use and refuses, with
// ErrConfigMismatch, a capacity different from the stored one (a replica
// with a larger capacity would over-admit). To change the capacity, stop all
// replicas and delete prefix/config, or use a new prefix. New fails with
// lease.ErrUnavailable if etcd cannot be reached. The caller keeps ownership
// of cli and closes it after Close.
func New(ctx context.Context, cli *clientv3.Client, cfg lease.Config, prefix string, opts ...Option) (*Registry, error) {
	if cli == nil {
		return nil, errors.New("etcdlease: nil client")
	}
	prefix = strings.TrimRight(prefix, "/")
	if prefix == "" {
		return nil, errors.New("etcdlease: empty prefix")
	}
	cfg = cfg.WithDefaults()
	if cfg.Capacity < 0 || cfg.TTL < 0 || cfg.MaxAge < 0 {
		return nil, fmt.Errorf("etcdlease: invalid config %+v", cfg)
	}
	o := options{opTimeout: DefaultOpTimeout, sessionTTL: DefaultSessionTTL}
	for _, f := range opts {
		f(&o)
	}
	r := &Registry{
		cli:      cli,
		cfg:      cfg,
		ttl:      roundTTL(cfg.TTL),
		prefix:   prefix,
		opt:      o,
		attempts: make(chan struct{}, cfg.Capacity),
		done:     make(chan struct{}),
		timers:   make(map[*time.Timer]struct{}),
	}
	want, _ := json.Marshal(storedConfig{Capacity: cfg.Capacity})
	octx, cancel := r.opCtx(ctx)
	resp, err := cli.Txn(octx).
		If(clientv3.Compare(clientv3.CreateRevision(r.configKey()), "=", 0)).
		Then(clientv3.OpPut(r.configKey(), string(want))).
		Else(clientv3.OpGet(r.configKey())).
		Commit()
	cancel()
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 1 {
			var got storedConfig
			if err := json.Unmarshal(kvs[0].Value, &got); err != nil || got.Capacity != cfg.Capacity {
				return nil, fmt.Errorf("%w: stored %q, have capacity %d", ErrConfigMismatch, kvs[0].Value, cfg.Capacity)
			}
		}
	}
	r.wg.Add(1)
	go r.sessionLoop()
	return r, nil
}

// SetObserver installs o to be told about this replica's grants, refusals
// and releases (Release, Revoke, and Acquire replacing a too-old lease); nil
// removes it. Expired is never called: expiries happen inside etcd, unseen
// by any one replica.
func (r *Registry) SetObserver(o lease.Observer) {
	r.mu.Lock()
	r.obs = o
	r.mu.Unlock()
}

func (r *Registry) observe(f func(lease.Observer)) {
	r.mu.Lock()
	o := r.obs
	r.mu.Unlock()
	if o != nil {
		f(o)
	}
}

// TTL is the effective sliding TTL (Config.TTL rounded up to whole seconds,
// at least MinTTL).
func (r *Registry) TTL() time.Duration { return r.ttl }

// Healthy reports whether etcd answers a linearizable read (quorum and a
// leader) within the operation timeout.
func (r *Registry) Healthy(ctx context.Context) error {
	if r.isClosed() {
		return lease.ErrClosed
	}
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	if _, err := r.cli.Get(octx, r.configKey(), clientv3.WithCountOnly()); err != nil {
		return r.fail(ctx, err)
	}
	return nil
}

// ---- keys and helpers ----

func (r *Registry) configKey() string        { return r.prefix + "/config" }
func (r *Registry) slotsPrefix() string      { return r.prefix + "/slots/" }
func (r *Registry) slotKey(i int) string     { return r.slotsPrefix() + strconv.Itoa(i) }
func (r *Registry) tokenKey(h string) string { return r.prefix + "/tokens/" + h }
func (r *Registry) pinsPrefix() string       { return r.prefix + "/pins/" }
func (r *Registry) pinKey(h string) string   { return r.pinsPrefix() + h }
func (r *Registry) waitersPrefix() string    { return r.prefix + "/waiters/" }

// roundTTL rounds d up to whole seconds, at least MinTTL.
func roundTTL(d time.Duration) time.Duration {
	if d < MinTTL {
		return MinTTL
	}
	s := (d + time.Second - 1) / time.Second
	return s * time.Second
}

// ttlSeconds is d in whole seconds, rounded up, at least MinTTL.
func ttlSeconds(d time.Duration) int64 { return int64(roundTTL(d) / time.Second) }

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// newToken is a 128-bit secret, 32 lowercase hex digits.
func newToken() string { return randomHex(16) }

// newHandle is a public lease name (16 hex digits), unrelated to the token.
func newHandle() string { return randomHex(8) }

func (r *Registry) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	octx, cancel := context.WithTimeout(ctx, r.opt.opTimeout)
	return clientv3.WithRequireLeader(octx), cancel
}

// fail maps an etcd error: the caller's own cancellation is returned as is,
// anything else means etcd could not be reached or answered badly, so
// nothing was granted: ErrUnavailable.
func (r *Registry) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("etcdlease: %w", cerr)
	}
	return fmt.Errorf("%w: %w", lease.ErrUnavailable, err)
}

func isLeaseNotFound(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound)
}

func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
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

// lookup reads a token's record, etcd lease and pin marker in one round trip.
func (r *Registry) lookup(ctx context.Context, h string) (kv *mvccpb.KeyValue, rec record, pinned bool, err error) {
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	resp, err := r.cli.Txn(octx).Then(
		clientv3.OpGet(r.tokenKey(h)),
		clientv3.OpGet(r.pinKey(h), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return nil, rec, false, r.fail(ctx, err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, rec, false, lease.ErrNotFound
	}
	rec, ok := decode(kvs[0])
	if !ok {
		return nil, rec, false, lease.ErrNotFound
	}
	return kvs[0], rec, resp.Responses[1].GetResponseRange().Count > 0, nil
}

// ---- Renew / Release / Revoke ----

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
	kv, _, _, err := r.lookup(ctx, hashToken(token))
	if err != nil {
		return err
	}
	return r.revoke(ctx, clientv3.LeaseID(kv.Lease))
}

func (r *Registry) revoke(ctx context.Context, id clientv3.LeaseID) error {
	octx, cancel := r.opCtx(ctx)
	defer cancel()
	_, err := r.cli.Revoke(octx, id)
	if isLeaseNotFound(err) {
		return lease.ErrNotFound
	}
	if err != nil {
		return r.fail(ctx, err)
	}
	r.observe(lease.Observer.Released)
	return nil
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
			return r.revoke(ctx, clientv3.LeaseID(kv.Lease))
		}
	}
	return lease.ErrNotFound
}

// ---- List ----

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

// ---- Close and background work ----

// Close stops background work (pin keep-alives, waiter session), wakes
// waiters with lease.ErrClosed and revokes this replica's waiter keys. Leases
// stay in etcd (other replicas keep serving them); pinned ones expire one TTL
// later unless unpinned. Close does not close the etcd client.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		for t := range r.timers {
			t.Stop()
		}
		r.timers = nil
		sess := r.session
		r.session = 0
		r.mu.Unlock()
		close(r.done)
		r.wg.Wait()
		if sess != 0 {
			r.revokeQuietly(sess)
		}
	})
	return nil
}

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
