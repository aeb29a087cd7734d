package service_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// connCounter counts the connections a client opens.
type connCounter struct{ n atomic.Int32 }

func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnBegin); ok {
		c.n.Add(1)
	}
}
func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                       {}

// TestMaxConnectionAge: past its age the server closes a connection, and the
// client opens another for its next calls; a call running when the age
// passes still finishes, within the grace.
func TestMaxConnectionAge(t *testing.T) {
	const age = 500 * time.Millisecond
	reg := lease.NewMemory(lease.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg, StillSlots: 1, MaxConnectionAge: age, MaxConnectionAgeGrace: time.Minute})
	conns := &connCounter{}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(conns))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := whirlv1.NewAnimationServiceClient(conn)

	release := service.HoldStillSlot(t, srv.Server)
	running := make(chan error, 1)
	go func() { running <- stillCall(t.Context(), api) }() // waits for the slot, past the age
	eventually(t, settle, "the still waiting", func() string {
		if _, w := service.StillStats(srv.Server); w != 1 {
			return "not yet"
		}
		return ""
	})
	eventually(t, settle, "a second connection", func() string {
		if err := curveCall(t.Context(), api); err != nil {
			return err.Error()
		}
		if conns.n.Load() < 2 {
			return "one connection so far"
		}
		return ""
	})
	release()
	if err := <-running; err != nil {
		t.Fatalf("a call running when its connection aged out: %v", err)
	}
}

// TestReflection: the reflection service answers unless disabled.
func TestReflection(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		reg := lease.NewMemory(lease.Config{})
		t.Cleanup(func() { _ = reg.Close() })
		srv := testserver.Start(t, service.Config{Leases: reg, DisableReflection: disabled})
		stream, err := reflectionpb.NewServerReflectionClient(testserver.Dial(t, srv.Addr)).ServerReflectionInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		if got := status.Code(err); (got == codes.Unimplemented) != disabled || (!disabled && err != nil) {
			t.Errorf("reflection disabled %v: %v", disabled, err)
		}
	}
}

// TestAdminTokenFunc: the admin token is the one current when a call
// arrives.
func TestAdminTokenFunc(t *testing.T) {
	reg := lease.NewMemory(lease.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	var token atomic.Pointer[string]
	old := adminToken
	token.Store(&old)
	srv := testserver.Start(t, service.Config{Leases: reg, AdminTokenFunc: func() string { return *token.Load() }})
	admin := whirlv1.NewLeaseAdminServiceClient(testserver.Dial(t, srv.Addr))
	if _, err := admin.ListLeases(adminCtx(), &whirlv1.ListLeasesRequest{}); err != nil {
		t.Fatal(err)
	}
	rotated := "rotated-token"
	token.Store(&rotated)
	if _, err := admin.ListLeases(adminCtx(), &whirlv1.ListLeasesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("old token after rotation: %v, want Unauthenticated", err)
	}
}
