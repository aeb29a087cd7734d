package client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

const (
	// MaxResumes bounds how many times one Render reconnects a broken
	// stream.
	MaxResumes = 8
	// resumeBackoff is the wait before the first reconnection; it doubles
	// each time, up to maxResumeBackoff, with jitter.
	resumeBackoff    = 100 * time.Millisecond
	maxResumeBackoff = 2 * time.Second
)

// WithoutResume makes Render fail on a broken stream instead of
// reconnecting and resuming it.
func WithoutResume() RenderOption {
	return func(o *renderOptions) { o.noResume = true }
}

// resumer decides what Render does when a stream breaks. A transient
// failure mid-stream (UNAVAILABLE: a reset connection, a server that went
// away or is draining) is retried after a backoff through the client's target, which
// may now lead to another replica; a stream that got its header resumes
// from the bytes already written, others start again. On the way:
//   - a lease found busy or gone (it was pinned by a replica that died) is
//     replaced by a new one, if Render acquired it;
//   - VIDEO_CHANGED (the other replica runs another ffmpeg build) starts
//     the video over from byte 0 when w can be rewound (an *os.File can),
//     and fails otherwise.
type resumer struct {
	c       *Client
	req     *whirlv1.RenderAnimationRequest
	w       io.Writer
	res     *Result
	report  func(Progress)
	replace func(context.Context) error
	enabled bool
	retries int
}

// rewinder is a writer Render can empty to start a video over.
type rewinder interface {
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
}

// next handles err from an attempt on v (started: the stream had delivered
// an event): it returns the verifier for the next attempt, or the error
// that ends Render. An UNAVAILABLE before anything arrived on the first
// attempt is the server refusing the call (no ffmpeg, say), not a break.
func (r *resumer) next(ctx context.Context, v *StreamVerifier, p *Progress, started bool, err error) (*StreamVerifier, error) {
	if !r.enabled || r.retries >= MaxResumes {
		return nil, renderError(ctx, err)
	}
	switch {
	case status.Code(err) == codes.Unavailable && (started || r.retries > 0):
	case r.retries > 0 && r.replace != nil && leaseStuck(err):
		// The lease is still pinned by the replica that died.
		if rerr := r.replace(ctx); rerr != nil {
			return nil, rerr
		}
	case r.retries > 0 && preconditionType(err) == "VIDEO_CHANGED":
		rw, ok := r.w.(rewinder)
		if !ok {
			return nil, renderError(ctx, err)
		}
		if _, serr := rw.Seek(0, io.SeekStart); serr != nil {
			return nil, renderError(ctx, serr)
		}
		if terr := rw.Truncate(0); terr != nil {
			return nil, renderError(ctx, terr)
		}
		v = NewStreamVerifier(r.w)
	default:
		return nil, renderError(ctx, err)
	}
	r.retries++
	wait := backoff(r.retries)
	p.Phase, p.Retry, p.RetryIn, p.Bytes = PhaseResuming, r.retries, wait, v.Size()
	r.report(*p)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, renderError(ctx, errors.Join(ctx.Err(), err))
	case <-t.C:
	}
	p.RetryIn = 0
	r.req.Resume = nil
	if v.Header() != nil {
		if rerr := v.Resume(); rerr != nil {
			return nil, renderError(ctx, rerr)
		}
		r.req.Resume = &whirlv1.Resume{VideoId: v.Header().GetVideoId(), Offset: v.Size()}
		r.res.Resumes = append(r.res.Resumes, v.Size())
	}
	return v, nil
}

// backoff is the jittered wait before reconnection n (from 1).
func backoff(n int) time.Duration {
	d := min(resumeBackoff<<(n-1), maxResumeBackoff)
	return d/2 + rand.N(d/2+1)
}

// leaseStuck reports a lease another replica still holds pinned, or that
// is gone.
func leaseStuck(err error) bool {
	switch Reason(err) {
	case whirlv1.ErrorReason_LEASE_NOT_FOUND, whirlv1.ErrorReason_LEASE_BUSY:
		return true
	case whirlv1.ErrorReason_ERROR_REASON_UNSPECIFIED: // a server from before ErrorInfo
		return status.Code(err) == codes.NotFound || preconditionType(err) == "LEASE_BUSY"
	}
	return false
}

// preconditionType is the type of err's PreconditionFailure violation, if
// it has one.
func preconditionType(err error) string {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.FailedPrecondition {
		return ""
	}
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok && len(pf.GetViolations()) > 0 {
			return pf.GetViolations()[0].GetType()
		}
	}
	return ""
}
