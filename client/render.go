package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Phase is where a render stands.
type Phase int

// The phases of a render, in order.
const (
	// PhaseLease: asking for a lease. After a refusal, Progress.RetryIn is
	// the wait before the next attempt.
	PhaseLease Phase = iota + 1
	// PhaseQueued: waiting for one of the server's render slots;
	// Progress.QueuePosition is the 1-based place in line.
	PhaseQueued
	// PhaseRendering: frames are being drawn and the MP4 streamed.
	PhaseRendering
	// PhaseResuming: the stream broke (the server went away, say); Render
	// reconnects after Progress.RetryIn and resumes from Progress.Bytes,
	// on whichever replica the target now leads to. Progress.Retry counts
	// the attempts.
	PhaseResuming
	// PhaseDone: the video is complete and verified.
	PhaseDone
)

func (p Phase) String() string {
	switch p {
	case PhaseLease:
		return "lease"
	case PhaseQueued:
		return "queued"
	case PhaseRendering:
		return "rendering"
	case PhaseResuming:
		return "resuming"
	case PhaseDone:
		return "done"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// Progress is a render's advance, as reported to WithProgress.
type Progress struct {
	Phase Phase
	// Attempt is the number of the current AcquireLease attempt (PhaseLease).
	Attempt int
	// RetryIn is the wait before the next attempt after all lease slots
	// were found taken (PhaseLease), or before reconnecting a broken stream
	// (PhaseResuming); zero while an attempt is running.
	RetryIn time.Duration
	// Retry is the number of the current reconnection of a broken stream
	// (PhaseResuming and after); 0 before the first.
	Retry int
	// QueuePosition is the 1-based place in the server's render queue
	// (PhaseQueued); 0 otherwise.
	QueuePosition int
	// FramesDone and FramesTotal count the frames handed to the encoder.
	FramesDone, FramesTotal int
	// Bytes is the number of MP4 bytes written so far.
	Bytes int64
}

// RenderOption tunes one Render call.
type RenderOption func(*renderOptions)

type renderOptions struct {
	leaseID    string
	keep       bool
	progress   func(Progress)
	policy     AcquirePolicy
	renewEvery time.Duration
	noResume   bool
}

// WithLease renders under a lease the caller holds (it overrides the
// request's lease_id). Render renews it but never releases it.
func WithLease(leaseID string) RenderOption {
	return func(o *renderOptions) { o.leaseID = leaseID }
}

// KeepLease keeps the lease Render acquired live after the render, instead
// of releasing it; Result.Lease holds it.
func KeepLease() RenderOption {
	return func(o *renderOptions) { o.keep = true }
}

// WithProgress has fn called with the render's progress: on each lease
// attempt, queue position, header, progress event and chunk. It is called
// from the goroutine running Render and should return quickly.
func WithProgress(fn func(Progress)) RenderOption {
	return func(o *renderOptions) { o.progress = fn }
}

// WithAcquirePolicy sets what Render does when every lease slot is taken.
// The default is AcquireRetry: try again after the server's RetryInfo
// delay (jittered, capped by WithMaxRetryDelay) until ctx ends. AcquireWait
// queues on the server instead; AcquireOnce fails at once.
func WithAcquirePolicy(p AcquirePolicy) RenderOption {
	return func(o *renderOptions) { o.policy = p }
}

// WithRenewInterval sets how often Render renews its lease while it runs;
// the default is a third of the lease's TTL.
func WithRenewInterval(d time.Duration) RenderOption {
	return func(o *renderOptions) { o.renewEvery = d }
}

// Result describes a finished, verified render.
type Result struct {
	// Header is what the server said the stream would carry: the curve
	// (with summary), size, rate, frames, style and MIME type.
	Header *whirlv1.RenderHeader
	// Trailer closes the stream: total bytes, SHA-256 and timings.
	Trailer *whirlv1.RenderTrailer
	// Bytes is the number of bytes written to the writer.
	Bytes int64
	// SHA256 is the lowercase hex SHA-256 of the bytes written, equal to
	// the trailer's.
	SHA256 string
	// Lease is the lease the render ran under.
	Lease *Lease
	// Released reports whether Render released the lease (it does for a
	// lease it acquired itself, unless KeepLease).
	Released bool
	// Resumes are the offsets a broken stream was resumed from, one per
	// reconnection, in order; empty when the first stream went through.
	Resumes []int64
	// ReleaseErr is why the release of a lease Render acquired failed
	// (the server shutting down, say); the lease then lives until it
	// expires. Nil when Released, or when the lease was not Render's to
	// release.
	ReleaseErr error
}

// Render streams the animation req describes to w and verifies it.
//
// Unless a lease is given (WithLease, or req.LeaseId), Render acquires one
// (see WithAcquirePolicy) and releases it when it returns, on success or
// failure, unless KeepLease is given. The lease is renewed every third of
// its TTL while Render runs. The MP4 bytes are written to w in order as they
// arrive; Render fails if chunks are not contiguous (ErrOutOfOrder), if the
// stream ends without a trailer (ErrTruncated), or if the bytes do not match
// the trailer's size (ErrSizeMismatch) or SHA-256 (ErrChecksumMismatch). On
// any error, what was written to w is incomplete and must be discarded.
//
// ctx bounds the whole render, lease acquisition included. req is not
// modified.
func (c *Client) Render(ctx context.Context, req *whirlv1.RenderAnimationRequest, w io.Writer, opts ...RenderOption) (*Result, error) {
	o := renderOptions{policy: AcquireRetry}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if req == nil {
		return nil, errors.New("whirl: render: nil request")
	}
	req = proto.Clone(req).(*whirlv1.RenderAnimationRequest)
	report := func(Progress) {}
	if o.progress != nil {
		report = o.progress
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	res := &Result{}
	var err error
	// replace swaps the lease for a new one when a reconnection finds it
	// stuck (see resume.go); only a lease Render acquired may be replaced.
	var replace func(context.Context) error
	owned := false
	if id := cmp.Or(o.leaseID, req.GetLeaseId()); id != "" {
		// The caller's lease: check it is live (and learn its TTL). At its
		// maximum age it cannot be renewed but stays usable until it
		// expires: render under it without keepalive.
		res.Lease, err = c.Renew(ctx, id)
		if status.Code(err) == codes.FailedPrecondition {
			res.Lease, err = &Lease{ID: id}, nil
		}
		if err != nil {
			return nil, err
		}
	} else {
		if res.Lease, err = c.acquire(ctx, AcquireOptions{Policy: o.policy}, report); err != nil {
			return nil, err
		}
		owned = true
		if !o.keep {
			defer func() {
				// Release even if ctx was cancelled: the slot is freed now
				// rather than when the TTL runs out.
				rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
				defer rcancel()
				relErr := c.Release(rctx, res.Lease.ID)
				res.Released = relErr == nil || status.Code(relErr) == codes.NotFound
				if !res.Released {
					res.ReleaseErr = relErr
				}
			}()
		}
	}
	stopRenewing := func() {}
	defer func() { stopRenewing() }()
	use := func(l *Lease) {
		stopRenewing()
		res.Lease, req.LeaseId = l, l.ID
		stopRenewing = c.keepAlive(ctx, l, o.renewEvery)
	}
	use(res.Lease)
	if owned {
		replace = func(ctx context.Context) error {
			rctx, rcancel := context.WithTimeout(ctx, releaseTimeout)
			_ = c.Release(rctx, res.Lease.ID)
			rcancel()
			l, err := c.acquire(ctx, AcquireOptions{Policy: o.policy}, report)
			if err == nil {
				use(l)
			}
			return err
		}
	}

	if err := c.stream(ctx, req, w, res, report, &o, replace); err != nil {
		return nil, err
	}
	return res, nil
}

// stream runs the RenderAnimation call, filling res, and reconnects and
// resumes it after a transient failure (see resume.go).
func (c *Client) stream(ctx context.Context, req *whirlv1.RenderAnimationRequest, w io.Writer, res *Result, report func(Progress), o *renderOptions, replace func(context.Context) error) error {
	v := NewStreamVerifier(w)
	r := resumer{c: c, req: req, w: w, res: res, report: report, replace: replace, enabled: !o.noResume}
	var p Progress
	for {
		started, err := c.attempt(ctx, req, v, &p, report)
		if err == nil {
			break
		}
		if v, err = r.next(ctx, v, &p, started, err); err != nil {
			return err
		}
	}
	res.Header, res.Trailer = v.Header(), v.Trailer()
	res.Bytes, res.SHA256 = v.Size(), v.Sum()
	p.Phase, p.QueuePosition, p.Bytes = PhaseDone, 0, res.Bytes
	p.FramesTotal = int(res.Trailer.GetFrames())
	p.FramesDone = p.FramesTotal
	report(p)
	return nil
}

// attempt runs one RenderAnimation call into v; its error is the call's
// status as received, or the verifier's. started reports that the stream
// delivered an event: the server had accepted the call.
func (c *Client) attempt(ctx context.Context, req *whirlv1.RenderAnimationRequest, v *StreamVerifier, p *Progress, report func(Progress)) (started bool, err error) {
	stream, err := c.anim.RenderAnimation(ctx, req)
	if err != nil {
		return false, err
	}
	err = v.Receive(stream, func(ev *whirlv1.RenderAnimationResponse) error {
		started = true
		if p.advance(ev, v) {
			report(*p)
		}
		return nil
	})
	return started, err
}

// renderError wraps a failed render's error: a status keeps its code.
func renderError(ctx context.Context, err error) error {
	if _, isStatus := status.FromError(err); isStatus {
		return rpcError(ctx, "render", err)
	}
	return fmt.Errorf("whirl: render: %w", err)
}

// advance updates p for an event the verifier accepted, reporting whether
// there is something new to tell.
func (p *Progress) advance(ev *whirlv1.RenderAnimationResponse, v *StreamVerifier) bool {
	switch e := ev.GetEvent().(type) {
	case *whirlv1.RenderAnimationResponse_Header:
		p.Phase, p.QueuePosition, p.FramesTotal = PhaseRendering, 0, int(e.Header.GetFrames())
	case *whirlv1.RenderAnimationResponse_Progress:
		if pos := int(e.Progress.GetQueuePosition()); pos > 0 {
			p.Phase, p.QueuePosition = PhaseQueued, pos
		} else {
			p.Phase, p.QueuePosition = PhaseRendering, 0
		}
		p.FramesDone, p.FramesTotal = int(e.Progress.GetFramesDone()), int(e.Progress.GetFramesTotal())
	case *whirlv1.RenderAnimationResponse_Chunk:
		p.Bytes = v.Size()
	default:
		return false // the trailer (Done follows) or an unknown event
	}
	return true
}

// minRenewInterval keeps a tiny TTL from turning keepalive into a busy loop.
const minRenewInterval = 50 * time.Millisecond

// keepAlive renews l every interval (default TTL/3) until the returned stop
// is called, which waits for the renewing goroutine to end. It stops by
// itself once the lease is gone (NOT_FOUND) or at its maximum age
// (FAILED_PRECONDITION); other failures are retried at the next tick.
func (c *Client) keepAlive(ctx context.Context, l *Lease, interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = l.TTL / 3
	}
	if interval <= 0 {
		return func() {}
	}
	interval = max(interval, minRenewInterval)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_, err := c.Renew(ctx, l.ID)
			switch status.Code(err) {
			case codes.NotFound, codes.FailedPrecondition:
				return
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
