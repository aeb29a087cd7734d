// Package lease admits callers to the renderer: at most Capacity live leases,
// each with a sliding TTL and a maximum age.
//
// Registry is the contract every store implements (memory here, etcd in
// etcdlease); the behavioural suite in leasetest holds each of them to it.
// A lease is identified two ways: its Token, a 128-bit secret from crypto/rand
// that only the holder knows, and its Handle, a public name operators see.
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Lease is a snapshot of one granted lease.
type Lease struct {
	// Token is the secret bearer token (32 lowercase hex digits). Empty in
	// listings.
	Token string
	// Handle is a public, non-secret name of the lease.
	Handle string
	// Holder is the caller's free-text label.
	Holder string
	// AcquiredAt is when the lease was first granted.
	AcquiredAt time.Time
	// ExpiresAt is when the lease ends unless renewed or pinned.
	ExpiresAt time.Time
	// MaxExpiresAt is AcquiredAt plus the maximum age: no renewal reaches past it.
	MaxExpiresAt time.Time
	// TTL is how far each renewal pushes ExpiresAt out.
	TTL time.Duration
	// Pinned reports whether a render is running under the lease.
	Pinned bool
}

// Snapshot describes the whole pool.
type Snapshot struct {
	Capacity int
	// Leases are the live leases, oldest first, without tokens.
	Leases []Lease
	// Waiting is the number of blocked Acquire calls (this process only).
	Waiting int
}

// Registry grants, renews and releases leases. All methods are safe for
// concurrent use.
type Registry interface {
	// Acquire grants a new lease to holder. If token names a live lease, that
	// lease is renewed and returned instead (a holder is never refused its own
	// lease); if that renewal is refused for maximum age, the old lease is
	// released and Acquire competes for a slot like any new caller.
	// With no free slot it returns an *ExhaustedError, or, if wait is set,
	// blocks in first-come first-served order until a slot frees or ctx ends.
	Acquire(ctx context.Context, holder, token string, wait bool) (Lease, error)
	// Renew pushes a live lease's expiry to now+TTL. It fails with ErrNotFound
	// for unknown, expired or released tokens, and with ErrTooOld when now+TTL
	// would pass MaxExpiresAt (the lease stays valid until its current expiry).
	Renew(ctx context.Context, token string) (Lease, error)
	// Release ends a lease at once; ErrNotFound if it is not live.
	Release(ctx context.Context, token string) error
	// Revoke ends a lease by its public handle; ErrNotFound if it is not live.
	Revoke(ctx context.Context, handle string) error
	// Pin marks the lease as rendering: it cannot expire until unpin is
	// called, and unpin renews it (expiry = min(now+TTL, MaxExpiresAt), which
	// ends it at once if the maximum age has passed). A lease can hold one pin
	// at a time: a second Pin fails with ErrBusy. unpin is idempotent and must
	// be called.
	Pin(ctx context.Context, token string) (l Lease, unpin func(), err error)
	// List describes the pool, tokens left out.
	List(ctx context.Context) (Snapshot, error)
	// Close stops background work and wakes waiters with ErrClosed.
	Close() error
}

// Sentinel errors; match them with errors.Is.
var (
	// ErrExhausted: every slot is taken. The concrete error is *ExhaustedError.
	ErrExhausted = errors.New("lease: all slots taken")
	// ErrNotFound: no live lease has that token or handle.
	ErrNotFound = errors.New("lease: not found or expired")
	// ErrTooOld: the lease reached its maximum age; acquire a new one.
	ErrTooOld = errors.New("lease: maximum age reached")
	// ErrBusy: the lease is already pinned by a running render.
	ErrBusy = errors.New("lease: already rendering")
	// ErrUnavailable: the backing store cannot be reached; nothing was granted.
	ErrUnavailable = errors.New("lease: store unavailable")
	// ErrClosed: the registry was closed.
	ErrClosed = errors.New("lease: registry closed")
)

// ExhaustedError is a refusal with a hint of when to retry.
type ExhaustedError struct {
	Capacity int
	// RetryAfter is the time until the earliest live lease expires.
	RetryAfter time.Duration
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("lease: all %d slots taken; retry in %s", e.Capacity, e.RetryAfter.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrExhausted) true.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// Config bounds a registry.
type Config struct {
	// Capacity is the maximum number of live leases (default 5).
	Capacity int
	// TTL is the sliding expiry (default 5m).
	TTL time.Duration
	// MaxAge caps a lease's total life (default 30m).
	MaxAge time.Duration
	// Observer, if not nil, is told about the registry's lease events from
	// the start; a store says which events it can see.
	Observer Observer
}

// Defaults for Config's zero fields.
const (
	DefaultCapacity = 5
	DefaultTTL      = 5 * time.Minute
	DefaultMaxAge   = 30 * time.Minute
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Capacity == 0 {
		c.Capacity = DefaultCapacity
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	return c
}
