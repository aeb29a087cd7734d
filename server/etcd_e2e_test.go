package main_test

import (
	"context"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/testetcd"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// startEtcd starts a one-member etcd (the standalone binary) that stops
// with the test; it skips or fails as testetcd.Binary says when there is none.
func startEtcd(t *testing.T) *testetcd.Member {
	t.Helper()
	return testetcd.Start(t, 1).Members[0]
}

type replica struct {
	*process
	api   whirlv1.AnimationServiceClient
	admin whirlv1.LeaseAdminServiceClient
	conn  *grpc.ClientConn
}

func startReplica(t *testing.T, endpoint string, extra ...string) *replica {
	t.Helper()
	args := append([]string{"--lease-store", "etcd", "--etcd-endpoints", endpoint, "--etcd-prefix", "/whirl-e2e",
		"--capacity", "5", "--acquire-rate", "0", "--admin-token", "ops", "--shutdown-grace", "2s"}, extra...)
	p := startServer(t, args...)
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &replica{process: p, api: whirlv1.NewAnimationServiceClient(conn), admin: whirlv1.NewLeaseAdminServiceClient(conn), conn: conn}
}

// TestTwoReplicasShareOneEtcd: the limit is global across replicas, a lease
// moves freely between them, and it survives a replica's restart.
func TestTwoReplicasShareOneEtcd(t *testing.T) {
	endpoint := startEtcd(t).Endpoint
	a, b := startReplica(t, endpoint), startReplica(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted []string
		other   []error
	)
	for i := range 500 {
		r := a
		if i%2 == 1 {
			r = b
		}
		wg.Go(func() {
			l, err := r.api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "storm"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				granted = append(granted, l.GetLeaseId())
			case status.Code(err) != codes.ResourceExhausted:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	if len(granted) != 5 || len(other) > 0 {
		t.Fatalf("500 acquires over two replicas: %d granted (want 5), unexpected errors %v", len(granted), other)
	}

	// Acquired anywhere, renewed and released on the other replica.
	for _, id := range granted[1:] {
		if _, err := b.api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: id}); err != nil {
			t.Fatalf("renew on b: %v", err)
		}
		if _, err := a.api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: id}); err != nil {
			t.Fatalf("release on a: %v", err)
		}
	}

	// A render on b under a lease a granted.
	stream, err := b.api.RenderAnimation(ctx, &whirlv1.RenderAnimationRequest{
		LeaseId: granted[0],
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 3}},
		Video:   &whirlv1.VideoOptions{Width: 64, Height: 64, Frames: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	sawTrailer := false
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("render on b: %v", err)
		}
		sawTrailer = sawTrailer || ev.GetTrailer() != nil
	}
	if !sawTrailer {
		t.Fatal("render on b ended without trailer")
	}

	// Restart a: the lease is still there, seen and renewable through it.
	if err := a.srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-a.done; err != nil {
		t.Fatalf("replica a exit: %v", err)
	}
	a.done <- nil
	a = startReplica(t, endpoint)
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer ops")
	list, err := a.admin.ListLeases(authed, &whirlv1.ListLeasesRequest{})
	if err != nil || list.GetCount() != 1 || list.GetCapacity() != 5 {
		t.Fatalf("after restart: %v, %v", list, err)
	}
	if _, err := a.api.RenewLease(ctx, &whirlv1.RenewLeaseRequest{LeaseId: granted[0]}); err != nil {
		t.Fatalf("renew after restart: %v", err)
	}
}

// TestEtcdOutageFailsClosed: with etcd gone, lease calls fail UNAVAILABLE
// (never granting) and whirl.leases health turns NOT_SERVING; when etcd
// returns, both recover by themselves and the limit still holds.
func TestEtcdOutageFailsClosed(t *testing.T) {
	etcd := startEtcd(t)
	r := startReplica(t, etcd.Endpoint, "--etcd-timeout", "500ms", "--capacity", "1")
	ctx := context.Background()
	if _, err := r.api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "before"}); err != nil {
		t.Fatal(err)
	}
	// The health watch reports each change of whirl.leases as the server's
	// poll of etcd sees it; the test waits on those reports.
	watchCtx, stopWatch := context.WithTimeout(ctx, time.Minute)
	defer stopWatch() // an open watch would hold the replica's graceful stop
	watch, err := healthpb.NewHealthClient(r.conn).Watch(watchCtx, &healthpb.HealthCheckRequest{Service: "whirl.leases"})
	if err != nil {
		t.Fatal(err)
	}
	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for {
			resp, err := watch.Recv()
			if err != nil {
				t.Fatalf("whirl.leases health watch, waiting for %v: %v", want, err)
			}
			if resp.GetStatus() == want {
				return
			}
		}
	}
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	etcd.Stop()
	if _, err := r.api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "during"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("acquire with etcd down: %v, want Unavailable", err)
	}
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)

	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	// The lease granted before the outage still fills the only slot.
	if _, err := r.api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "after"}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("acquire after recovery with the slot taken: %v, want ResourceExhausted", err)
	}
}
