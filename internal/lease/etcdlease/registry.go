package etcdlease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

	attempts chan struct{} // semaphore: in-flight slot attempts
	// watchEvents counts the watch events that woke waiters.
	watchEvents atomic.Int64
	done        chan struct{}
	closeOnce   sync.Once
	wg          sync.WaitGroup

	mu      sync.Mutex
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

// observe tells Config.Observer, if any, about this replica's grants,
// refusals and releases (Release, Revoke, and Acquire replacing a too-old
// lease). Expired is never told: expiries happen inside etcd, unseen by any
// one replica.
func (r *Registry) observe(f func(lease.Observer)) {
	if o := r.cfg.Observer; o != nil {
		f(o)
	}
}

// WaiterWakeups is the number of watch events that have woken this
// replica's waiting Acquire calls: the cost of the wait line in etcd.
func (r *Registry) WaiterWakeups() int64 { return r.watchEvents.Load() }

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

func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

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
