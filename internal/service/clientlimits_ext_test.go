package service_test

import (
	"context"
	"testing"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestAcquireRateLimitPerPeer: past its burst, one client's AcquireLease
// calls are refused on the acquire_rate quota (TestRefusalsAgree checks the
// refusal's details), while other RPCs are not limited.
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
	if r := acquireRefused(t, api); r.subject != "acquire_rate" {
		t.Fatalf("past burst: refused on %q, want acquire_rate", r.subject)
	}
	// Renewals are not rate limited.
	for range 10 {
		if _, err := api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: granted[0]}); err != nil {
			t.Fatal(err)
		}
	}
}
