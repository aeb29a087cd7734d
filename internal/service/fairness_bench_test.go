package service_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// BenchmarkRefusal times, over one loopback connection, a RenderStill
// refused by its client's rate limit (the whole refusal: interceptors,
// details, trailer) beside a health Check, the cheapest call the server
// has: the refusal's cost over the transport's.
func BenchmarkRefusal(b *testing.B) {
	srv := testserver.Start(b, service.Config{StillLimits: service.ClientLimits{Rate: 1e-9, Burst: 1}})
	conn := testserver.Dial(b, srv.Addr)
	api, health := whirlv1.NewAnimationServiceClient(conn), healthpb.NewHealthClient(conn)
	if err := stillCall(b.Context(), api); err != nil {
		b.Fatal(err) // the one call of the burst
	}
	b.Run("health Check", func(b *testing.B) {
		for b.Loop() {
			if _, err := health.Check(b.Context(), &healthpb.HealthCheckRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RenderStill refused", func(b *testing.B) {
		for b.Loop() {
			if err := stillCall(b.Context(), api); status.Code(err) != codes.ResourceExhausted {
				b.Fatalf("%v, want a refusal", err)
			}
		}
	})
}
