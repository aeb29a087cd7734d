package service_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/service"
)

// TestPanicInEncoderStartFailsOnlyThatRender proves that a panic while an
// encoder starts (it runs on the encode package's own goroutine, outside
// gRPC's recovery) ends that render with INTERNAL and no trailer, and the
// server goes on serving: the next render finishes, health is SERVING.
func TestPanicInEncoderStartFailsOnlyThatRender(t *testing.T) {
	const panicWidth = 96 // requests this wide get the panicking start
	h := startHarness(t, service.Config{
		StartEncoder: func(ctx context.Context, o encode.Options, sink func(fmp4.Segment) error) (service.FrameEncoder, error) {
			if o.Width == panicWidth {
				panic("the encoder's start exploded")
			}
			return encode.Start(ctx, o, sink)
		},
	}, 1, nil)
	leases := h.acquireN(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	panicky := tinyVideo(leases[0].token, 21, 30)
	panicky.Video.Width = panicWidth
	if r := collect(t, mustStream(t, h, ctx, panicky), nil); status.Code(r.err) != codes.Internal || r.trailer != nil {
		t.Fatalf("render whose encoder start panics: %v, trailer %v; want Internal and no trailer", r.err, r.trailer)
	}
	h.assertQuiescent(t, leases)
	if r := collect(t, mustStream(t, h, ctx, tinyVideo(leases[0].token, 22, 30)), nil); r.err != nil || r.trailer == nil || r.trailer.GetFrames() != 30 {
		t.Errorf("render after the panic: %v, trailer %v", r.err, r.trailer)
	}
	resp, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health after the panic: %v, %v", resp, err)
	}
}
