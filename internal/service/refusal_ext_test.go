package service_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// refusalInfo is what a RESOURCE_EXHAUSTED refusal tells a client.
type refusalInfo struct {
	msg      string
	retry    time.Duration // google.rpc.RetryInfo
	pushback time.Duration // grpc-retry-pushback-ms trailer
	subject  string        // the one google.rpc.QuotaFailure violation
}

// acquireRefused makes one AcquireLease call that must be refused and reads
// the refusal.
func acquireRefused(t *testing.T, api whirlv1.AnimationServiceClient) refusalInfo {
	t.Helper()
	var trailer metadata.MD
	_, err := api.AcquireLease(context.Background(), &whirlv1.AcquireLeaseRequest{Holder: "refused"}, grpc.Trailer(&trailer))
	return readRefusal(t, "AcquireLease", err, trailer)
}

// readRefusal reads a call's RESOURCE_EXHAUSTED refusal from its error and
// trailer.
func readRefusal(t *testing.T, call string, err error, trailer metadata.MD) refusalInfo {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("%s: %v, want ResourceExhausted", call, err)
	}
	r := refusalInfo{msg: st.Message()}
	if v := trailer.Get("grpc-retry-pushback-ms"); len(v) == 1 {
		ms, _ := strconv.Atoi(v[0])
		r.pushback = time.Duration(ms) * time.Millisecond
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			r.retry = d.GetRetryDelay().AsDuration()
		case *errdetails.QuotaFailure:
			if v := d.GetViolations(); len(v) == 1 {
				r.subject = v[0].GetSubject()
			}
		}
	}
	return r
}

// TestRefusalsAgree: whichever limit refuses AcquireLease, the message, the
// RetryInfo and the retry-pushback trailer give the same delay, and a full
// pool says 5 s (the cap), not the minutes until its earliest lease expires.
func TestRefusalsAgree(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cfg       service.Config
		lease     lease.Config
		granted   int
		subject   string
		wantRetry time.Duration // 0: anything up to maxRetry
		maxRetry  time.Duration
	}{
		{"full pool", service.Config{}, lease.Config{Capacity: 2, TTL: 5 * time.Minute}, 2, "leases", 5 * time.Second, 5 * time.Second},
		{"rate limit", service.Config{AcquireRate: 0.5, AcquireBurst: 2}, lease.Config{Capacity: 100}, 2, "acquire_rate", 0, 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := lease.NewMemory(tt.lease)
			t.Cleanup(func() { _ = reg.Close() })
			tt.cfg.Leases = reg
			api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, testserver.Start(t, tt.cfg).Addr))
			for range tt.granted {
				if _, err := api.AcquireLease(context.Background(), &whirlv1.AcquireLeaseRequest{Holder: "first"}); err != nil {
					t.Fatal(err)
				}
			}
			r := acquireRefused(t, api)
			switch {
			case r.subject != tt.subject:
				t.Errorf("QuotaFailure subject %q, want %q", r.subject, tt.subject)
			case r.retry <= 0 || r.retry > tt.maxRetry || tt.wantRetry != 0 && r.retry != tt.wantRetry:
				t.Errorf("RetryInfo %v, want %v (at most %v)", r.retry, tt.wantRetry, tt.maxRetry)
			case r.pushback != r.retry:
				t.Errorf("pushback trailer %v, RetryInfo %v: they must agree", r.pushback, r.retry)
			case !strings.HasSuffix(r.msg, "; retry in "+r.retry.String()):
				t.Errorf("message %q does not say RetryInfo's %v", r.msg, r.retry)
			case strings.HasPrefix(r.msg, "lease:"):
				t.Errorf("message %q carries the registry's prefix", r.msg)
			}
		})
	}
}
