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

// AcquireRequest is one call of Registry.Acquire.
type AcquireRequest struct {
	// Holder is the caller's free-text label.
	Holder string
	// Token, if it names a live lease, asks for that lease to be renewed
	// and returned instead of a new one.
	Token string
	// Wait queues the call for a slot instead of refusing it.
	Wait bool
	// RequestID, if set, makes the call idempotent: while the lease first
	// granted to (Holder, RequestID) lives, repeating the call returns that
	// lease again, renewed, instead of taking a second slot.
	RequestID string
}

// Snapshot describes the whole pool.
type Snapshot struct {
	Capacity int
	// Leases are the live leases, oldest first, without tokens.
	Leases []Lease
	// Waiting is the number of blocked Acquire calls (this process only).
	Waiting int
	// Ending is the number of slots still held by renders stopping after
	// their lease was released or revoked (not listed in Leases).
	Ending int
}

// Registry grants, renews and releases leases. All methods are safe for
// concurrent use.
type Registry interface {
	// Acquire grants a new lease to req.Holder. If req.RequestID names a
	// live lease granted to the same holder and request id, that lease is
	// renewed and returned (with its token) instead; else if req.Token names
	// a live lease, that lease is renewed and returned (a holder is never
	// refused its own lease). If such a renewal is refused for maximum age,
	// the old lease is released and Acquire competes for a slot like any new
	// caller. With no free slot it returns an *ExhaustedError, or, if
	// req.Wait is set, blocks in first-come first-served order until a slot
	// frees or ctx ends; with Config.MaxWaiting callers already waiting it
	// returns an *ExhaustedError with Queue set.
	Acquire(ctx context.Context, req AcquireRequest) (Lease, error)
	// Renew pushes a live lease's expiry to now+TTL. It fails with ErrNotFound
	// for unknown, expired or released tokens, and with ErrTooOld when now+TTL
	// would pass MaxExpiresAt (the lease stays valid until its current expiry).
	Renew(ctx context.Context, token string) (Lease, error)
	// Release ends a lease; ErrNotFound if it is not live. An unpinned
	// lease's slot frees at once. A pinned lease ends at once for every
	// caller (Renew, Pin and Release no longer find it), its Pin's Lost
	// channel closes with ErrReleased, and its slot frees only when that
	// pin is unpinned: a slot is never handed on while a render holds it.
	Release(ctx context.Context, token string) error
	// Revoke ends a lease by its public handle, as Release does, with
	// ErrRevoked as the pin's reason; ErrNotFound if it is not live.
	Revoke(ctx context.Context, handle string) error
	// Pin marks the lease as rendering: it cannot expire until Unpin is
	// called, and Unpin renews it (expiry = min(now+TTL, MaxExpiresAt), which
	// ends it at once if the maximum age has passed). A lease can hold one pin
	// at a time: a second Pin fails with ErrBusy. The Pin reports through
	// Lost when the lease ends under it; Unpin is idempotent and must be
	// called once the work the pin guards has stopped.
	Pin(ctx context.Context, token string) (*Pin, error)
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

	// The reasons a pinned lease ends under its render (Pin.Err).

	// ErrReleased: the holder released the lease.
	ErrReleased = errors.New("lease: released while rendering")
	// ErrRevoked: an operator revoked the lease.
	ErrRevoked = errors.New("lease: revoked while rendering")
	// ErrFenced: the store could no longer prove the lease alive (etcd
	// keep-alives unanswered for the TTL less a safety margin), so the
	// slot may soon be handed to someone else.
	ErrFenced = errors.New("lease: could not be kept alive")
)

// ExhaustedError is a refusal with a hint of when to retry.
type ExhaustedError struct {
	Capacity int
	// Queue is set when the caller asked to wait and the wait line already
	// held MaxWaiting callers.
	Queue      bool
	MaxWaiting int
	// RetryAfter is the time until the earliest live lease expires.
	RetryAfter time.Duration
}

func (e *ExhaustedError) Error() string {
	if e.Queue {
		return fmt.Sprintf("lease: all %d slots taken and %d callers already waiting; retry in %s", e.Capacity, e.MaxWaiting, e.RetryAfter.Round(time.Millisecond))
	}
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
	// MaxWaiting bounds the callers waiting for a slot (default 64); past
	// it a waiting Acquire is refused at once.
	MaxWaiting int
	// Observer, if not nil, is told about the registry's lease events from
	// the start; a store says which events it can see.
	Observer Observer
}

// Defaults for Config's zero fields.
const (
	DefaultCapacity   = 5
	DefaultTTL        = 5 * time.Minute
	DefaultMaxAge     = 30 * time.Minute
	DefaultMaxWaiting = 64
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
	if c.MaxWaiting == 0 {
		c.MaxWaiting = DefaultMaxWaiting
	}
	return c
}
