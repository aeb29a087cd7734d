package client_test

import (
	"bytes"
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestReleaseFailureIsReported: when the release after a verified render
// fails (here the server answers UNAVAILABLE, as one shutting down does),
// Render still succeeds, and Result says the lease was not released and
// why.
func TestReleaseFailureIsReported(t *testing.T) {
	failRelease := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == whirlv1.AnimationService_ReleaseLease_FullMethodName {
			return nil, status.Error(codes.Unavailable, "server shutting down")
		}
		return h(ctx, req)
	})
	srv := startServer(t, service.Config{}, failRelease)
	c := dial(t, srv.Addr)
	var buf bytes.Buffer
	res, err := c.Render(context.Background(), smallVideo(3, 5), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if res.Released || status.Code(res.ReleaseErr) != codes.Unavailable {
		t.Fatalf("Released %v, ReleaseErr %v; want not released, UNAVAILABLE", res.Released, res.ReleaseErr)
	}
	if res.Lease.Handle == "" {
		t.Error("no handle to name the lease left behind")
	}
	if err := c.Release(context.Background(), res.Lease.ID); status.Code(err) != codes.Unavailable {
		t.Fatalf("release through the failing server: %v", err)
	}
	res2, err := c.Render(context.Background(), smallVideo(3, 5), &buf, client.WithLease(res.Lease.ID))
	if err != nil || res2.ReleaseErr != nil || res2.Released {
		t.Errorf("render under the caller's lease: %v, released %v, release error %v", err, res2.Released, res2.ReleaseErr)
	}
}
