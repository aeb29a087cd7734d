package client

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Lease is admission to the renderer.
type Lease struct {
	// ID is the lease token: a secret; anyone holding it can use, renew or
	// release the lease.
	ID string
	// Handle is the lease's public name, as ListLeases shows it.
	Handle string
	// Holder is the label given at acquisition.
	Holder string
	// ExpireTime is when the lease ends unless renewed or used.
	ExpireTime time.Time
	// MaxExpireTime is the end of the lease's maximum age.
	MaxExpireTime time.Time
	// TTL is how far each renewal pushes ExpireTime out.
	TTL time.Duration
}

func leaseFromProto(l *whirlv1.Lease) *Lease {
	return &Lease{
		ID:            l.GetLeaseId(),
		Handle:        l.GetHandle(),
		Holder:        l.GetHolder(),
		ExpireTime:    timeOf(l.GetExpireTime().AsTime(), l.GetExpireTime() != nil),
		MaxExpireTime: timeOf(l.GetMaxExpireTime().AsTime(), l.GetMaxExpireTime() != nil),
		TTL:           l.GetTtl().AsDuration(),
	}
}

func timeOf(t time.Time, set bool) time.Time {
	if !set {
		return time.Time{}
	}
	return t
}

// AcquirePolicy is what Acquire does when every lease slot is taken.
type AcquirePolicy int

const (
	// AcquireOnce asks once and returns the refusal, an *ExhaustedError.
	AcquireOnce AcquirePolicy = iota
	// AcquireRetry asks again after the server's RetryInfo delay, capped by
	// WithMaxRetryDelay and jittered, until the caller's context ends; a
	// retry that could only start after the context's deadline is not made.
	AcquireRetry
	// AcquireWait asks the server to queue the call (wait=true): slots are
	// handed out first come, first served, and the call blocks until one
	// frees or the context ends (DEADLINE_EXCEEDED).
	AcquireWait
)

// AcquireOptions tune Acquire. The zero value asks once, with the client's
// holder label.
type AcquireOptions struct {
	// Holder labels the lease for operators; "" means the client's
	// (WithHolder).
	Holder string
	// LeaseID is a lease the caller already holds: if it is live it is
	// renewed and returned instead of a new one.
	LeaseID string
	// Policy is what to do when every slot is taken.
	Policy AcquirePolicy
	// RequestID makes the call idempotent (1-64 of A-Z a-z 0-9 . _ -): a
	// retry whose first reply was lost gets the same lease, never a second
	// one. "" means a fresh random id for this call, kept across its own
	// retries, which is what almost every caller wants.
	RequestID string
}

// Acquire asks for a lease. A refusal because every slot is taken is an
// *ExhaustedError (errors.Is(err, ErrExhausted), status code
// RESOURCE_EXHAUSTED); o.Policy decides whether to retry or wait instead.
func (c *Client) Acquire(ctx context.Context, o AcquireOptions) (*Lease, error) {
	return c.acquire(ctx, o, nil)
}

func (c *Client) acquire(ctx context.Context, o AcquireOptions, report func(Progress)) (*Lease, error) {
	req := &whirlv1.AcquireLeaseRequest{
		Holder:    cmp.Or(o.Holder, c.opts.holder),
		LeaseId:   o.LeaseID,
		Wait:      o.Policy == AcquireWait,
		RequestId: cmp.Or(o.RequestID, newRequestID()),
	}
	var refused *ExhaustedError // the latest refusal, once there is one
	for attempt := 1; ; attempt++ {
		if report != nil {
			report(Progress{Phase: PhaseLease, Attempt: attempt})
		}
		l, err := c.acquireOnce(ctx, req)
		if err == nil {
			return leaseFromProto(l), nil
		}
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted {
			if ctxErr := deadlineOf(ctx, st); refused != nil && ctxErr != nil {
				// The caller's context ended during a retry: the refusals
				// are what kept the call from a lease.
				refused.Attempts, refused.ctxErr = attempt, ctxErr
				return nil, refused
			}
			return nil, rpcError(ctx, "acquire lease", err)
		}
		ex := exhaustedFrom(st, attempt)
		refused = ex
		if o.Policy != AcquireRetry {
			ex.ctxErr = ctx.Err()
			return nil, ex
		}
		delay := retryDelay(ex.RetryAfter, c.opts.maxRetryDelay, rand.Float64())
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			ex.ctxErr = context.DeadlineExceeded
			return nil, ex
		}
		if report != nil {
			report(Progress{Phase: PhaseLease, Attempt: attempt, RetryIn: delay})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			ex.ctxErr = ctx.Err()
			return nil, ex
		case <-t.C:
		}
	}
}

func (c *Client) acquireOnce(ctx context.Context, req *whirlv1.AcquireLeaseRequest) (*whirlv1.Lease, error) {
	if req.GetWait() {
		// Waiting is bounded by the caller's context alone.
		return c.anim.AcquireLease(ctx, req)
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	return c.anim.AcquireLease(ctx, req)
}

// deadlineOf is why a call ended by a deadline or cancellation ended:
// ctx's error, or DeadlineExceeded when the status says so first. The
// server enforces the deadline the call carries too, and on a loaded
// machine its DEADLINE_EXCEEDED can arrive before ctx's own timer has
// fired. Nil for any other end.
func deadlineOf(ctx context.Context, st *status.Status) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if st.Code() == codes.DeadlineExceeded {
		return context.DeadlineExceeded
	}
	return nil
}

// fallbackRetryDelay is used when a refusal carries no RetryInfo.
const fallbackRetryDelay = 500 * time.Millisecond

// retryDelay is how long to wait before asking for a lease again: the
// server's hint plus up to 20% jitter, or, when that passes maxDelay, just
// under maxDelay (up to 20% less), so that refused callers spread out
// instead of retrying in step. u is uniform in [0, 1).
func retryDelay(hint, maxDelay time.Duration, u float64) time.Duration {
	if hint <= 0 {
		hint = fallbackRetryDelay
	}
	d := hint + time.Duration(u*float64(hint)/5)
	if d > maxDelay {
		d = maxDelay - time.Duration(u*float64(maxDelay)/5)
	}
	return max(d, time.Millisecond)
}

// Renew pushes a live lease's expiry out by its TTL. An unknown, expired or
// released lease fails with NOT_FOUND; one at its maximum age with
// FAILED_PRECONDITION (it stays valid until its current expiry).
func (c *Client) Renew(ctx context.Context, leaseID string) (*Lease, error) {
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	l, err := c.anim.RenewLease(cctx, &whirlv1.RenewLeaseRequest{LeaseId: leaseID})
	if err != nil {
		return nil, rpcError(ctx, "renew lease", err)
	}
	return leaseFromProto(l), nil
}

// Release frees a lease's slot at once. An unknown lease fails with
// NOT_FOUND.
func (c *Client) Release(ctx context.Context, leaseID string) error {
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	if _, err := c.anim.ReleaseLease(cctx, &whirlv1.ReleaseLeaseRequest{LeaseId: leaseID}); err != nil {
		return rpcError(ctx, "release lease", err)
	}
	return nil
}

// Pool describes the server's lease pool (admin).
type Pool struct {
	// Count is the number of live leases.
	Count int
	// Capacity is the maximum number of live leases.
	Capacity int
	// Waiting is the number of AcquireLease calls queued for a slot (on the
	// server answering).
	Waiting int
	// Leases are the live leases, oldest first, without their tokens.
	Leases []LeaseInfo
}

// LeaseInfo describes a live lease without its token (admin).
type LeaseInfo struct {
	// Handle is the lease's public name, for RevokeLease.
	Handle string
	// Holder is the holder label.
	Holder string
	// AcquireTime is when the lease was first acquired.
	AcquireTime time.Time
	// ExpireTime is when it expires unless renewed.
	ExpireTime time.Time
	// MaxExpireTime is the end of its maximum age.
	MaxExpireTime time.Time
	// Rendering reports whether a render is running under it.
	Rendering bool
}

// ListLeases describes the lease pool. It needs the admin token
// (WithToken): without it the server answers UNAUTHENTICATED, or
// PERMISSION_DENIED if it has no admin token configured.
func (c *Client) ListLeases(ctx context.Context) (*Pool, error) {
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	resp, err := c.admin.ListLeases(cctx, &whirlv1.ListLeasesRequest{}, c.adminAuth()...)
	if err != nil {
		return nil, rpcError(ctx, "list leases", err)
	}
	p := &Pool{Count: int(resp.GetCount()), Capacity: int(resp.GetCapacity()), Waiting: int(resp.GetWaiting())}
	for _, l := range resp.GetLeases() {
		p.Leases = append(p.Leases, LeaseInfo{
			Handle:        l.GetHandle(),
			Holder:        l.GetHolder(),
			AcquireTime:   timeOf(l.GetAcquireTime().AsTime(), l.GetAcquireTime() != nil),
			ExpireTime:    timeOf(l.GetExpireTime().AsTime(), l.GetExpireTime() != nil),
			MaxExpireTime: timeOf(l.GetMaxExpireTime().AsTime(), l.GetMaxExpireTime() != nil),
			Rendering:     l.GetRendering(),
		})
	}
	return p, nil
}

// RevokeLease ends a lease by its public handle, as if it had expired. It
// needs the admin token (WithToken).
func (c *Client) RevokeLease(ctx context.Context, handle string) error {
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	if _, err := c.admin.RevokeLease(cctx, &whirlv1.RevokeLeaseRequest{Handle: handle}, c.adminAuth()...); err != nil {
		return rpcError(ctx, "revoke lease", err)
	}
	return nil
}

// newRequestID returns a random UUID (version 4) for AcquireLeaseRequest.request_id.
func newRequestID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
