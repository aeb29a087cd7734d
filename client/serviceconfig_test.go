package client_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// callCounter counts the calls each method receives and fails the first
// call of one method with UNAVAILABLE, before the handler runs.
type callCounter struct {
	failFirst string
	mu        sync.Mutex
	calls     map[string]int
}

func (c *callCounter) count(method string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[method]++
	if method == c.failFirst && c.calls[method] == 1 {
		return status.Error(codes.Unavailable, "injected: first call fails")
	}
	return nil
}

func (c *callCounter) get(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

func (c *callCounter) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := c.count(info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := c.count(info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
	}
}

// TestDialAppliesServiceConfig: a Dialed client's connection retries what
// the service config says on UNAVAILABLE and nothing else, and a refused
// AcquireOnce is asked once (the channel does not retry RESOURCE_EXHAUSTED
// for this client: Acquire's policy does).
func TestDialAppliesServiceConfig(t *testing.T) {
	for _, tc := range []struct {
		method string
		call   func(context.Context, *client.Client) error
		calls  int
		ok     bool
	}{
		{whirlv1.AnimationService_GenerateCurve_FullMethodName, func(ctx context.Context, c *client.Client) error {
			_, err := c.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 1})
			return err
		}, 2, true},
		{whirlv1.AnimationService_AcquireLease_FullMethodName, func(ctx context.Context, c *client.Client) error {
			_, err := c.Acquire(ctx, client.AcquireOptions{})
			return err
		}, 2, true},
		{whirlv1.AnimationService_RenderAnimation_FullMethodName, func(ctx context.Context, c *client.Client) error {
			_, err := c.Render(ctx, smallVideo(1, 5), io.Discard)
			return err
		}, 1, false},
	} {
		t.Run(tc.method, func(t *testing.T) {
			counter := &callCounter{failFirst: tc.method, calls: map[string]int{}}
			c := dial(t, startServer(t, service.Config{}, counter.options()...).Addr)
			err := tc.call(t.Context(), c)
			if (err == nil) != tc.ok || !tc.ok && status.Code(err) != codes.Unavailable {
				t.Fatalf("err %v, want success %v (else UNAVAILABLE)", err, tc.ok)
			}
			if n := counter.get(tc.method); n != tc.calls {
				t.Errorf("%d calls, want %d", n, tc.calls)
			}
		})
	}

	t.Run("refused AcquireOnce", func(t *testing.T) {
		reg := lease.NewMemory(lease.Config{Capacity: 1})
		t.Cleanup(func() { _ = reg.Close() })
		counter := &callCounter{calls: map[string]int{}}
		c := dial(t, startServer(t, service.Config{Leases: reg}, counter.options()...).Addr)
		if _, err := c.Acquire(t.Context(), client.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Acquire(t.Context(), client.AcquireOptions{}); !errors.Is(err, client.ErrExhausted) {
			t.Fatalf("second Acquire: %v, want ErrExhausted", err)
		}
		if n := counter.get(whirlv1.AnimationService_AcquireLease_FullMethodName); n != 2 {
			t.Errorf("%d AcquireLease calls for two Acquires, want 2", n)
		}
	})
}

// TestAcquireRetryAfterLostReplyTakesOneSlot: the reply to the first
// AcquireLease is lost on the way back (the server granted a lease); the
// channel's retry (service config, UNAVAILABLE) carries the same request_id
// and gets the same lease, so the pool holds exactly one.
func TestAcquireRetryAfterLostReplyTakesOneSlot(t *testing.T) {
	reg := lease.NewMemory(lease.Config{Capacity: 2})
	t.Cleanup(func() { _ = reg.Close() })
	srv := startServer(t, service.Config{Leases: reg})
	proxy := testserver.StartReplyDropProxy(t, srv.Addr)
	c := dial(t, proxy.Addr())
	l, err := c.Acquire(t.Context(), client.AcquireOptions{})
	if err != nil {
		t.Fatalf("Acquire through a reply-dropping proxy: %v", err)
	}
	if !proxy.Dropped() {
		t.Fatal("the proxy dropped no reply: the test tested nothing")
	}
	s, err := reg.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Leases) != 1 || s.Leases[0].Handle != l.Handle {
		t.Fatalf("pool after a retried acquire: %+v, want exactly the one lease returned (%s)", s.Leases, l.Handle)
	}
}
