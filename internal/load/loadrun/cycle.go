package loadrun

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Failure kinds, the keys of Report.Failures.
const (
	failAcquire     = "acquire_status"    // AcquireLease failed other than RESOURCE_EXHAUSTED
	failRenderStart = "render_start"      // RenderAnimation could not be opened
	failStatus      = "render_status"     // the stream ended with an error status
	failNoTrailer   = "no_trailer"        // the stream ended cleanly without a trailer
	failOrder       = "event_order"       // events out of order, after the trailer, unknown; frames differ
	failOffset      = "offset_gap"        // a chunk did not start where the last ended
	failSHA         = "sha256_mismatch"   // trailer checksum differs from the bytes
	failTotal       = "total_mismatch"    // trailer length differs from the bytes
	failHeader      = "header_mismatch"   // header does not describe the request
	failNoFragment  = "no_media_fragment" // no segment_end after the init segment
	failRelease     = "release_status"    // ReleaseLease failed
)

// cycleError is a failed cycle: kind is one of the fail* constants.
type cycleError struct {
	kind string
	msg  string
}

func (e *cycleError) Error() string { return e.kind + ": " + e.msg }

func fail(kind, format string, args ...any) *cycleError {
	return &cycleError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// clientStats is what one client saw; merged at the end, so no locking.
type clientStats struct {
	acquires      []acquireSample
	firstFragment []time.Duration
	renderTotal   []time.Duration
	completed     int
	refusedLease  int
	refusedOther  int
	failed        int
	aborted       int
	bytes         int64
	maxQueue      int
	otherExample  string // one RESOURCE_EXHAUSTED that was not a full pool
	retryHints    []time.Duration
	failures      map[string]int
}

// acquireSample is one AcquireLease call.
type acquireSample struct {
	at      time.Duration // call start, from the start of the run
	d       time.Duration
	client  int
	outcome string // granted, refused, other (a rate limit?) or error
}

// client loops acquire → render → release until the run ends.
func (r *loadRun) client(id int, api whirlv1.AnimationServiceClient, rng *rand.Rand, st *clientStats) {
	holder := fmt.Sprintf("load-%d", id)
	if r.cfg.Ramp > 0 {
		r.sleep(r.cfg.Ramp * time.Duration(id) / time.Duration(r.cfg.Clients))
	}
	refusedInARow := 0
	for r.runCtx.Err() == nil {
		leaseID, retry, err := r.acquire(api, id, holder, st)
		switch {
		case err != nil && r.hardCtx.Err() != nil:
			return // cut off by the drain deadline
		case retry:
			refusedInARow++
			r.sleep(r.backoff(err, refusedInARow, rng))
			continue
		case err != nil:
			r.failed(st, err)
			r.sleep(100 * time.Millisecond)
			continue
		}
		refusedInARow = 0
		r.holding(+1)
		var renderErr error
		if !r.cfg.NoRender {
			renderErr = r.render(api, leaseID, rng, st)
		} else if r.cfg.Hold > 0 {
			r.sleepHard(r.cfg.Hold)
		}
		// The lease is no longer counted as held once the release is on its
		// way: the server may hand the slot to someone else before our
		// ReleaseLease returns, and counting it until then would report an
		// over-admission that did not happen.
		r.holding(-1)
		relErr := r.release(api, leaseID)
		switch {
		case renderErr != nil && r.hardCtx.Err() != nil:
			st.aborted++
		case renderErr != nil:
			r.failed(st, renderErr)
			r.sleep(100 * time.Millisecond) // do not hammer a broken server
		case relErr != nil:
			r.failed(st, relErr)
			r.sleep(100 * time.Millisecond)
		default:
			st.completed++
			r.liveDone.Add(1)
		}
	}
}

// acquire makes one AcquireLease call and records its latency. retry reports
// a RESOURCE_EXHAUSTED refusal (err then holds the status).
func (r *loadRun) acquire(api whirlv1.AnimationServiceClient, id int, holder string, st *clientStats) (leaseID string, retry bool, err error) {
	ctx, cancel := context.WithTimeout(r.hardCtx, r.cfg.AcquireTimeout)
	defer cancel()
	t := time.Now()
	var trailer metadata.MD
	l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: holder}, grpc.Trailer(&trailer))
	d := time.Since(t)
	if r.hardCtx.Err() != nil && err != nil {
		return "", false, err
	}
	sample := acquireSample{at: t.Sub(r.start), d: d, client: id}
	defer func() { st.acquires = append(st.acquires, sample) }()
	if err == nil {
		sample.outcome = "granted"
		return l.GetLeaseId(), false, nil
	}
	s := status.Convert(err)
	if s.Code() != codes.ResourceExhausted {
		sample.outcome = "error"
		return "", false, fail(failAcquire, "AcquireLease: %s: %s", s.Code(), s.Message())
	}
	r.liveRefused.Add(1)
	if isLeaseRefusal(s) {
		sample.outcome = "refused"
		st.refusedLease++
		if d, ok := client.RetryDelay(err); ok {
			st.retryHints = append(st.retryHints, d)
		}
	} else {
		sample.outcome = "other"
		st.refusedOther++
		if st.otherExample == "" {
			st.otherExample = fmt.Sprintf("%s: %s (details %v)", s.Code(), s.Message(), s.Details())
		}
	}
	return "", true, &refusal{st: s, pushback: pushback(trailer)}
}

// sleepHard sleeps for d or until the drain deadline.
func (r *loadRun) sleepHard(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.hardCtx.Done():
	}
}

func (r *loadRun) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.runCtx.Done():
	}
}

func (r *loadRun) holding(delta int64) {
	n := r.held.Add(delta)
	for {
		m := r.maxHeld.Load()
		if n <= m || r.maxHeld.CompareAndSwap(m, n) {
			break
		}
	}
	if delta > 0 && n > int64(r.capacity) {
		r.overClient.Add(1)
		r.logf("OVER-ADMISSION: clients hold %d leases, capacity %d", n, r.capacity)
	}
}

func (r *loadRun) failed(st *clientStats, err error) {
	st.failed++
	r.liveFailed.Add(1)
	kind := "other"
	var ce *cycleError
	if errors.As(err, &ce) {
		kind = ce.kind
	}
	st.failures[kind]++
	if r.failLines.Add(1) <= 20 {
		r.logf("FAILED: %v", err)
	}
}

func (r *loadRun) release(api whirlv1.AnimationServiceClient, leaseID string) error {
	// Released even after the drain deadline: a lease left behind would
	// hold a slot until its TTL ran out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.hardCtx), 5*time.Second)
	defer cancel()
	if _, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: leaseID}); err != nil {
		s := status.Convert(err)
		return fail(failRelease, "ReleaseLease: %s: %s", s.Code(), s.Message())
	}
	return nil
}
