package main_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// etcdProcess is the standalone etcd binary (Debian's etcd-server package,
// or whatever `etcd` is on PATH) on loopback ports.
type etcdProcess struct {
	bin, dir, endpoint, peerURL string
	cmd                         *exec.Cmd
}

// startEtcd starts etcd and waits for /health; it stops with the test.
func startEtcd(t *testing.T) *etcdProcess {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("WHIRL_REQUIRE_ETCD") != "" {
			t.Fatalf("etcd binary not found (install with: apt-get install -y etcd-server): %v", err)
		}
		t.Skip("etcd binary not on PATH; scripts/test.sh installs it")
	}
	e := &etcdProcess{
		bin:      bin,
		dir:      filepath.Join(t.TempDir(), "etcd"),
		endpoint: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		peerURL:  fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
	}
	e.start(t)
	t.Cleanup(e.stop)
	return e
}

// start runs etcd on e's ports and data directory (again, after stop).
func (e *etcdProcess) start(t *testing.T) {
	t.Helper()
	e.cmd = exec.Command(e.bin,
		"--name", "whirl-test", "--data-dir", e.dir,
		"--listen-client-urls", e.endpoint, "--advertise-client-urls", e.endpoint,
		"--listen-peer-urls", e.peerURL, "--initial-advertise-peer-urls", e.peerURL,
		"--initial-cluster", "whirl-test="+e.peerURL, "--log-level", "error")
	e.cmd.Stdout, e.cmd.Stderr = io.Discard, io.Discard
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(e.endpoint + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"true"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd at %s not healthy: %v", e.endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *etcdProcess) stop() {
	if e.cmd != nil {
		_ = e.cmd.Process.Kill()
		_ = e.cmd.Wait()
		e.cmd = nil
	}
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
	endpoint := startEtcd(t).endpoint
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
	r := startReplica(t, etcd.endpoint, "--etcd-timeout", "500ms", "--capacity", "1")
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
	etcd.stop()
	if _, err := r.api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "during"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("acquire with etcd down: %v, want Unavailable", err)
	}
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)

	etcd.start(t)
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	// The lease granted before the outage still fills the only slot.
	if _, err := r.api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "after"}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("acquire after recovery with the slot taken: %v, want ResourceExhausted", err)
	}
}
