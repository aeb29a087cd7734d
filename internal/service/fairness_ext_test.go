package service_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// dialFrom opens a connection to addr whose source address is ip, so that a
// loopback server sees a client of its own (all of 127/8 is loopback).
func dialFrom(t *testing.T, addr, ip string) whirlv1.AnimationServiceClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return whirlv1.NewAnimationServiceClient(conn)
}

// holdHeader marks a call the gate holds in its handler.
const holdHeader = "x-test-hold"

// gate is an interceptor inside the server's own: a call carrying
// holdHeader reports on entered, then waits until open is closed. Calls
// held there are in flight for the limits.
type gate struct {
	entered chan struct{}
	open    chan struct{}
}

func newGate() gate { return gate{entered: make(chan struct{}, 16), open: make(chan struct{})} }

func (g gate) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(holdHeader)) > 0 {
		g.entered <- struct{}{}
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return handler(ctx, req)
}

// limitedCall is one call a per-client limit counts.
type limitedCall func(ctx context.Context, api whirlv1.AnimationServiceClient, opts ...grpc.CallOption) error

func stillRequest(seed uint64) *whirlv1.RenderStillRequest {
	return &whirlv1.RenderStillRequest{Width: 64, Height: 64,
		Source: &whirlv1.RenderStillRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: seed}}}
}

func stillCall(ctx context.Context, api whirlv1.AnimationServiceClient, opts ...grpc.CallOption) error {
	_, err := api.RenderStill(ctx, stillRequest(1), opts...)
	return err
}

func curveCall(ctx context.Context, api whirlv1.AnimationServiceClient, opts ...grpc.CallOption) error {
	_, err := api.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 1}, opts...)
	return err
}

// checkRefusal fails unless call, made by api, is refused on quota subject
// with the full details: RetryInfo, the same delay in the pushback trailer
// and in the message, and the request id in the trailer.
func checkRefusal(t *testing.T, call limitedCall, api whirlv1.AnimationServiceClient, ctx context.Context, subject string) refusalInfo {
	t.Helper()
	var trailer metadata.MD
	r := readRefusal(t, subject, call(ctx, api, grpc.Trailer(&trailer)), trailer)
	switch {
	case r.subject != subject:
		t.Errorf("QuotaFailure subject %q, want %q", r.subject, subject)
	case r.retry <= 0 || r.pushback != r.retry:
		t.Errorf("RetryInfo %v, pushback trailer %v: want equal and positive", r.retry, r.pushback)
	case !strings.HasSuffix(r.msg, "; retry in "+r.retry.String()):
		t.Errorf("message %q does not say RetryInfo's %v", r.msg, r.retry)
	case len(trailer.Get(service.RequestIDHeader)) != 1:
		t.Errorf("trailer %v lacks the request id", trailer)
	}
	return r
}

// TestPerClientLimits: a client from 127.0.0.2 spends its allowance of one
// limit (its burst, or its calls in flight held in the handler), its next
// call is refused on that limit with the full details, and a client from
// 127.0.0.3 is not limited by it; held calls then complete.
func TestPerClientLimits(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     service.Config
		call    limitedCall
		held    int // calls in flight at the cap; 0: burst calls instead
		burst   int
		subject string
	}{
		{"still in flight", service.Config{StillLimits: service.ClientLimits{InFlight: 2}}, stillCall, 2, 0, "still_inflight"},
		{"still rate", service.Config{StillLimits: service.ClientLimits{Rate: 0.01, Burst: 2}}, stillCall, 0, 2, "still_rate"},
		{"curve in flight", service.Config{CurveLimits: service.ClientLimits{InFlight: 3}}, curveCall, 3, 0, "curve_inflight"},
		{"curve rate", service.Config{CurveLimits: service.ClientLimits{Rate: 0.01, Burst: 3}}, curveCall, 0, 3, "curve_rate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate()
			srv := testserver.Start(t, tt.cfg, grpc.ChainUnaryInterceptor(g.unary))
			a, b := dialFrom(t, srv.Addr, "127.0.0.2"), dialFrom(t, srv.Addr, "127.0.0.3")
			ctx := t.Context()
			heldErrs := make(chan error, tt.held)
			for range tt.held {
				go func() { heldErrs <- tt.call(metadata.AppendToOutgoingContext(ctx, holdHeader, "1"), a) }()
				<-g.entered
			}
			for i := range tt.burst {
				if err := tt.call(ctx, a); err != nil {
					t.Fatalf("call %d within the burst: %v", i, err)
				}
			}
			checkRefusal(t, tt.call, a, ctx, tt.subject)
			if err := tt.call(ctx, b); err != nil {
				t.Fatalf("the other client: %v, want it not limited by the first", err)
			}
			close(g.open)
			for range tt.held {
				if err := <-heldErrs; err != nil {
					t.Fatalf("held call: %v", err)
				}
			}
		})
	}
}

// TestClientKeyHeader: with ClientHeader set, callers on one connection are
// limited by the header's value; a value past the length kept in memory
// still keys its own client, and calls without the header count against
// their address.
func TestClientKeyHeader(t *testing.T) {
	srv := testserver.Start(t, service.Config{ClientHeader: "x-client", CurveLimits: service.ClientLimits{Rate: 0.01, Burst: 1}})
	api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr))
	as := func(v string) context.Context {
		if v == "" {
			return t.Context()
		}
		return metadata.AppendToOutgoingContext(t.Context(), "x-client", v)
	}
	long := strings.Repeat("k", 4000)
	for _, client := range []string{"alice", "bob", long, long[:3999], ""} {
		if err := curveCall(as(client), api); err != nil {
			t.Fatalf("first call of %.10q: %v", client, err)
		}
	}
	for _, client := range []string{"alice", "bob", long, long[:3999], ""} {
		checkRefusal(t, curveCall, api, as(client), "curve_rate")
	}
}

// TestStillQueueBounds: with the one still slot taken, a still waits in a
// line of one. With a long maximum wait, a second still is refused at once
// (still_queue); with a short one, the still waiting is refused when it
// passes (still_wait), not left to stall. Both are told to come back after
// the maximum wait (no hold measured yet), and once the slot is free a
// still is drawn. The short wait is still long enough that the test sees
// the still in line first on a loaded machine.
func TestStillQueueBounds(t *testing.T) {
	for _, tt := range []struct {
		name    string
		maxWait time.Duration
		subject string // the refusal: of a second still, or of the one waiting
	}{
		{"line full", time.Minute, "still_queue"},
		{"waited too long", 2 * time.Second, "still_wait"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := testserver.Start(t, service.Config{StillSlots: 1, StillQueue: queue.Limits{MaxWaiting: 1, MaxWait: tt.maxWait}})
			api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr))
			release := service.HoldStillSlot(t, srv.Server)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var waitTrailer metadata.MD
			waited := make(chan error, 1)
			go func() { waited <- stillCall(ctx, api, grpc.Trailer(&waitTrailer)) }()
			eventually(t, settle, "a still waiting", func() string {
				if _, w := service.StillStats(srv.Server); w != 1 {
					return fmt.Sprintf("%d waiting", w)
				}
				return ""
			})
			var r refusalInfo
			if tt.subject == "still_queue" {
				r = checkRefusal(t, stillCall, api, ctx, tt.subject)
				cancel() // the still waiting goes
				<-waited
			} else {
				r = readRefusal(t, "waiting still", <-waited, waitTrailer)
			}
			if r.subject != tt.subject || r.retry != tt.maxWait || r.pushback != tt.maxWait {
				t.Errorf("refusal %+v, want one on %s, retry in %v", r, tt.subject, tt.maxWait)
			}
			// The server sees a cancelled waiter leave a moment after its
			// client does.
			eventually(t, settle, "the line empty", func() string {
				if run, w := service.StillStats(srv.Server); run != 1 || w != 0 {
					return fmt.Sprintf("%d drawing, %d waiting; want the held slot only", run, w)
				}
				return ""
			})
			release()
			resp, err := api.RenderStill(t.Context(), stillRequest(2))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := png.Decode(bytes.NewReader(resp.GetPng())); err != nil {
				t.Fatalf("still once the slot is free: %v", err)
			}
		})
	}
}

// TestRenderMaxWait: an animation waiting for the only render slot longer
// than RenderMaxWait ends RESOURCE_EXHAUSTED on render_wait, having sent
// nothing but progress; its lease stays valid, unpinned and usable. The
// wait is long enough that the test sees the render in line first on a
// loaded machine.
func TestRenderMaxWait(t *testing.T) {
	const maxWait = 2 * time.Second
	h := startHarness(t, service.Config{
		RenderSlots:   1,
		RenderMaxWait: maxWait,
		StartEncoder: func(ctx context.Context, _ encode.Options, _ func(fmp4.Segment) error) (service.FrameEncoder, error) {
			return blockingEncoder{ctx}, nil
		},
	}, 10, nil)
	leases := h.acquireN(t, 2)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	blocker, err := h.api.RenderAnimation(ctx, tinyVideo(leases[0].token, 1, 10))
	if err != nil {
		t.Fatal(err)
	}
	renders := func(running, queued int) func() string {
		return func() string {
			if r, q := h.srv.RenderStats(); r != running || q != queued {
				return fmt.Sprintf("%d running, %d queued", r, q)
			}
			return ""
		}
	}
	eventually(t, settle, "blocker render", renders(1, 0))
	waiter, err := h.api.RenderAnimation(t.Context(), tinyVideo(leases[1].token, 2, 10))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, settle, "a render in line", renders(1, 1))
	var ev *whirlv1.RenderAnimationResponse
	for err == nil {
		if ev, err = waiter.Recv(); err == nil && ev.GetProgress() == nil {
			t.Fatalf("a render waiting for a slot sent %v", ev)
		}
	}
	r := readRefusal(t, "RenderAnimation", err, waiter.Trailer())
	if r.subject != "render_wait" || r.retry != maxWait || r.pushback != r.retry {
		t.Fatalf("render past its maximum wait: %+v, want refused on render_wait, retry in %v (no hold measured yet)", r, maxWait)
	}
	h.waitNotRendering(t, leases[1])
	if _, err := h.api.RenewLease(t.Context(), &whirlv1.RenewLeaseRequest{LeaseId: leases[1].token}); err != nil {
		t.Fatalf("lease of the refused render: %v, want it still valid", err)
	}
	cancel()
	_, _ = blocker.Recv()
	again, err := h.api.RenderAnimation(t.Context(), tinyVideo(leases[1].token, 2, 10))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Recv(); err != nil {
		t.Fatalf("the refused render's lease renders again: %v", err)
	}
}
