package service_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// DrainFirst runs at shutdown after health turns NOT_SERVING and while the
// gRPC server still serves (before its graceful stop), with a context that
// ends with the grace.
func TestDrainFirstRunsBeforeTheGracefulStop(t *testing.T) {
	reg := lease.NewMemory(lease.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	const grace = 20 * time.Second
	srv := service.NewServer(service.Config{Leases: reg, ShutdownGrace: grace, Logger: slog.New(slog.DiscardHandler)})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn := testserver.Dial(t, lis.Addr().String())
	health, api := healthpb.NewHealthClient(conn), whirlv1.NewAnimationServiceClient(conn)

	type seen struct {
		status      healthpb.HealthCheckResponse_ServingStatus
		callErr     error
		graceLeft   time.Duration
		hasDeadline bool
	}
	drained := make(chan seen, 1)
	srv.DrainFirst(func(ctx context.Context) {
		var s seen
		deadline, ok := ctx.Deadline()
		s.graceLeft, s.hasDeadline = time.Until(deadline), ok
		res, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil {
			s.status = res.GetStatus()
		}
		// A new call is refused: shutdown has begun, though the graceful
		// stop has not (health, above, still answers).
		_, s.callErr = api.GenerateCurve(context.Background(), &whirlv1.GenerateCurveRequest{Seed: 1})
		drained <- s
	})

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	if _, err := api.GenerateCurve(t.Context(), &whirlv1.GenerateCurveRequest{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	cancel()
	s := <-drained
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if s.status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health during the drain: %v, want NOT_SERVING", s.status)
	}
	if status.Code(s.callErr) != codes.Unavailable {
		t.Errorf("a new call during the drain: %v, want UNAVAILABLE", s.callErr)
	}
	if !s.hasDeadline || s.graceLeft <= 0 || s.graceLeft > grace {
		t.Errorf("drain context: deadline %v, %v left; want the grace (%v)", s.hasDeadline, s.graceLeft, grace)
	}
}

// TestDrainKeepsLeaseCalls: while shutdown waits for a render to finish,
// the calls that free or keep capacity (ReleaseLease, RenewLease, the admin
// calls) are still served and only new work is refused; releasing the
// render's lease then ends the render, and with it the wait.
func TestDrainKeepsLeaseCalls(t *testing.T) {
	reg := lease.NewMemory(lease.Config{Capacity: 3})
	t.Cleanup(func() { _ = reg.Close() })
	srv := service.NewServer(service.Config{Leases: reg, AdminToken: adminToken, ShutdownGrace: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn := testserver.Dial(t, lis.Addr().String())
	api, admin := whirlv1.NewAnimationServiceClient(conn), whirlv1.NewLeaseAdminServiceClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	e := leaseEnv{renderEnv: renderEnv{api: api}, reg: reg, admin: admin}
	rendering, spare, kept := e.acquireLease(t), e.acquireLease(t), e.acquireLease(t)
	stream := e.startLongRender(t, t.Context(), rendering.GetLeaseId(), 21)
	cancel()
	eventually(t, settle, "new work to be refused", func() string {
		_, err := api.GenerateCurve(t.Context(), &whirlv1.GenerateCurveRequest{Seed: 1})
		if status.Code(err) != codes.Unavailable {
			return "GenerateCurve: " + status.Code(err).String()
		}
		return ""
	})
	if _, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "late"}); status.Code(err) != codes.Unavailable {
		t.Errorf("AcquireLease while draining: %v, want UNAVAILABLE", err)
	}
	if _, err := api.RenewLease(t.Context(), &whirlv1.RenewLeaseRequest{LeaseId: kept.GetLeaseId()}); err != nil {
		t.Errorf("RenewLease while draining: %v", err)
	}
	if _, err := api.ReleaseLease(t.Context(), &whirlv1.ReleaseLeaseRequest{LeaseId: spare.GetLeaseId()}); err != nil {
		t.Errorf("ReleaseLease while draining: %v", err)
	}
	if _, err := admin.ListLeases(adminCtx(), &whirlv1.ListLeasesRequest{}); err != nil {
		t.Errorf("ListLeases while draining: %v", err)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a render was running", err)
	default:
	}
	if _, err := api.ReleaseLease(t.Context(), &whirlv1.ReleaseLeaseRequest{LeaseId: rendering.GetLeaseId()}); err != nil {
		t.Fatalf("releasing the rendering lease while draining: %v", err)
	}
	wantLeaseEnded(t, rest(stream), "LEASE_RELEASED")
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if s, _ := reg.List(t.Context()); len(s.Leases) != 1 || s.Leases[0].Handle != kept.GetHandle() {
		t.Errorf("pool after shutdown: %+v, want only the renewed lease", s.Leases)
	}
}
