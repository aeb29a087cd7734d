package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCallLogLines: one JSON line per call with method, code, duration, peer
// and request id (the client's, or a generated one echoed in the headers),
// and never a lease token, whatever the call did with it.
func TestCallLogLines(t *testing.T) {
	var logs lockedBuffer
	reg := lease.NewMemory(lease.Config{Capacity: 1})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{
		Leases: reg,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr))
	ctx := metadata.AppendToOutgoingContext(context.Background(), service.RequestIDHeader, "req-from-client")

	l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "logger"})
	if err != nil {
		t.Fatal(err)
	}
	token := l.GetLeaseId()
	var header metadata.MD
	if _, err := api.RenewLease(context.Background(), &whirlv1.RenewLeaseRequest{LeaseId: token}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if ids := header.Get(service.RequestIDHeader); len(ids) != 1 || len(ids[0]) != 16 {
		t.Errorf("generated request id header: %v", ids)
	}
	_, _ = api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "second"}) // refused: capacity 1
	req := smallVideo(11, 5)
	req.LeaseId = token
	stream, err := api.RenderAnimation(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
	}
	if _, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: token}); err != nil {
		t.Fatal(err)
	}
	_, _ = api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: token}) // NotFound
	srv.Stop()                                                                 // flush: every call has finished

	out := logs.String()
	if strings.Contains(out, token) || strings.Contains(out, token[:16]) {
		t.Fatal("a lease token (or half of one) appears in the logs")
	}
	methods := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] != "finished call" {
			continue
		}
		for _, key := range []string{"grpc.method", "grpc.code", "grpc.time_ms", "peer.address", "request_id"} {
			if _, ok := rec[key]; !ok {
				t.Errorf("call line lacks %s: %s", key, line)
			}
		}
		methods[rec["grpc.method"].(string)]++
		if rec["grpc.method"] == "AcquireLease" && rec["request_id"] != "req-from-client" {
			t.Errorf("client's request id not logged: %s", line)
		}
	}
	want := map[string]int{"AcquireLease": 2, "RenewLease": 1, "RenderAnimation": 1, "ReleaseLease": 2}
	for m, n := range want {
		if methods[m] != n {
			t.Errorf("%d log lines for %s, want %d (all: %v)", methods[m], m, n, methods)
		}
	}
}
