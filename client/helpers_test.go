package client_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

const adminToken = "test-admin-token"

// startServer runs the real server; cfg.Leases defaults to an in-memory
// registry of capacity 5 and cfg.AdminToken to adminToken.
func startServer(t *testing.T, cfg service.Config, extra ...grpc.ServerOption) *testserver.Server {
	t.Helper()
	if cfg.Leases == nil {
		reg := lease.NewMemory(lease.Config{Capacity: 5})
		t.Cleanup(func() { _ = reg.Close() })
		cfg.Leases = reg
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = adminToken
	}
	return testserver.Start(t, cfg, extra...)
}

// dial connects a client with the admin token and a generous call timeout.
func dial(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]client.Option{client.WithToken(adminToken), client.WithTimeout(10 * time.Second), client.WithHolder(t.Name())}, opts...)
	c, err := client.Dial(ctx, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// smallVideo is a 160×120 video of the curve from seed.
func smallVideo(seed uint64, frames int32) *whirlv1.RenderAnimationRequest {
	return &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: seed}},
		Video:  &whirlv1.VideoOptions{Width: 160, Height: 120, Fps: 30, Frames: frames, Style: whirlv1.Style_STYLE_WHEELS},
	}
}

// liveLeases is the number of live leases, by the admin API.
func liveLeases(t *testing.T, c *client.Client) int {
	t.Helper()
	p, err := c.ListLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }
