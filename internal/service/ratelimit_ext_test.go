package service_test

import (
	"context"
	"strconv"
	"testing"

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

// TestAcquireRateLimitPerPeer: past its burst, one client's AcquireLease
// calls are refused with RESOURCE_EXHAUSTED, RetryInfo, a QuotaFailure
// naming the rate limit and the same delay as a retry-pushback trailer,
// while other RPCs are not limited.
func TestAcquireRateLimitPerPeer(t *testing.T) {
	reg := lease.NewMemory(lease.Config{Capacity: 100})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg, AcquireRate: 0.5, AcquireBurst: 3})
	api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr))
	ctx := context.Background()
	var granted []string
	for range 3 {
		l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "burst"})
		if err != nil {
			t.Fatalf("within burst: %v", err)
		}
		granted = append(granted, l.GetLeaseId())
	}
	var trailer metadata.MD
	_, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "burst"}, grpc.Trailer(&trailer))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("past burst: %v, want ResourceExhausted", err)
	}
	ms, convErr := strconv.Atoi(firstOf(trailer.Get("grpc-retry-pushback-ms")))
	if convErr != nil || ms <= 0 || ms > 2000 {
		t.Fatalf("retry pushback trailer %v", trailer)
	}
	var retry *errdetails.RetryInfo
	var quota *errdetails.QuotaFailure
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			retry = d
		case *errdetails.QuotaFailure:
			quota = d
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration().Milliseconds() != int64(ms) {
		t.Errorf("RetryInfo %v, want the trailer's %d ms", retry, ms)
	}
	if v := quota.GetViolations(); len(v) != 1 || v[0].GetSubject() != "acquire_rate" {
		t.Errorf("QuotaFailure %v, want one violation on acquire_rate", quota)
	}
	// Renewals are not rate limited.
	for range 10 {
		if _, err := api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: granted[0]}); err != nil {
			t.Fatal(err)
		}
	}
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
