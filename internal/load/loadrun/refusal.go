package loadrun

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
)

// refusal is a RESOURCE_EXHAUSTED answer to AcquireLease.
type refusal struct {
	st *status.Status
	// pushback is the grpc-retry-pushback-ms trailer, -1 if absent.
	pushback time.Duration
}

func (e *refusal) Error() string { return e.st.Err().Error() }

func pushback(md metadata.MD) time.Duration {
	v := md.Get("grpc-retry-pushback-ms")
	if len(v) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return time.Duration(n) * time.Millisecond
}

// isLeaseRefusal tells a full lease pool (QuotaFailure on subject "leases")
// from any other RESOURCE_EXHAUSTED, such as a per-peer rate limit.
func isLeaseRefusal(s *status.Status) bool { return quotaSubject(s) == "leases" }

// quotaSubject is the subject of a refusal's QuotaFailure (whirl sends one
// violation), or "" without one.
func quotaSubject(s *status.Status) string {
	for _, d := range s.Details() {
		if q, ok := d.(*errdetails.QuotaFailure); ok {
			for _, v := range q.GetViolations() {
				return v.GetSubject()
			}
		}
	}
	return ""
}

// backoff is the wait after the n-th refusal in a row. The server's hint
// d is its RetryInfo delay, else its grpc-retry-pushback-ms trailer, else
// 50 ms doubling per refusal in a row. A hint under MaxBackoff is honoured,
// with up to half of it again added as jitter: [d, 1.5d]. A longer one
// (a full pool says when the earliest lease would expire, often minutes
// away, while releases free slots much sooner) is cut to MaxBackoff and
// drawn from [MaxBackoff/2, MaxBackoff]. Either way refused clients do not
// come back in lockstep.
func (r *loadRun) backoff(err error, n int, rng *rand.Rand) time.Duration {
	d := time.Duration(-1)
	var rf *refusal
	if errors.As(err, &rf) {
		d = rf.pushback
		if ri, ok := client.RetryDelay(rf.st.Err()); ok {
			d = ri
		}
		if d >= 0 && !isLeaseRefusal(rf.st) {
			// A rate limit is per caller IP, and clients may share one: a
			// floor doubling per refusal in a row keeps a crowd behind one
			// address from retrying in lockstep at the limiter's pace.
			d = max(d, expBackoff(n))
		}
	}
	if d < 0 {
		d = expBackoff(n)
	}
	d = max(d, time.Millisecond)
	if c := r.cfg.MaxBackoff; d >= c {
		return c/2 + time.Duration(rng.Int64N(int64(c/2)+1))
	}
	return d + time.Duration(rng.Int64N(int64(d/2)+1))
}

// expBackoff is 50 ms doubling per refusal in a row (n >= 1).
func expBackoff(n int) time.Duration {
	return 50 * time.Millisecond << min(max(n-1, 0), 10)
}
