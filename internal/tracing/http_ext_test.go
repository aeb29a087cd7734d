package tracing_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/whirl-dev/whirl/internal/browser"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	"github.com/whirl-dev/whirl/internal/tracing"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestTraceparentOverHTTP: a call through the HTTP front end, in Connect,
// gRPC-Web or gRPC, with a W3C traceparent header, is traced as the child
// of the span that header names.
func TestTraceparentOverHTTP(t *testing.T) {
	recv, endpoint := startReceiver(t, "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	tr, err := tracing.Setup(t.Context(), os.LookupEnv, "whirl", "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(t.Context()) })
	reg := lease.NewMemory(lease.Config{})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg, TracerProvider: tr.Provider, Propagator: tr.Propagator})
	base := serveHTTP(t, srv)

	for i, p := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect", nil},
		{"gRPC-Web", []connect.ClientOption{connect.WithGRPCWeb()}},
		{"gRPC", []connect.ClientOption{connect.WithGRPC()}},
	} {
		t.Run(p.name, func(t *testing.T) {
			traceID := bytes.Repeat([]byte{byte(i + 1)}, 16)
			parentID := bytes.Repeat([]byte{0xa0 + byte(i)}, 8)
			var ps http.Protocols
			ps.SetUnencryptedHTTP2(true)
			hc := &http.Client{Transport: &http.Transport{Protocols: &ps}}
			c := connect.NewClient[whirlv1.GenerateCurveRequest, whirlv1.Curve](hc, base+whirlv1.AnimationService_GenerateCurve_FullMethodName, p.opts...)
			req := connect.NewRequest(&whirlv1.GenerateCurveRequest{Seed: 1})
			req.Header().Set("traceparent", "00-"+hex.EncodeToString(traceID)+"-"+hex.EncodeToString(parentID)+"-01")
			if _, err := c.CallUnary(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for !slices.ContainsFunc(recv.all(), func(s receivedSpan) bool {
				return bytes.Equal(s.GetTraceId(), traceID) && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER
			}) {
				if time.Now().After(deadline) {
					t.Fatalf("no server span in trace %x; got %s", traceID, names(recv.all()))
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, s := range recv.all() {
				if bytes.Equal(s.GetTraceId(), traceID) && !bytes.Equal(s.GetParentSpanId(), parentID) {
					t.Errorf("span %s in the caller's trace is not the child of the caller's span", s.GetName())
				}
			}
		})
	}
}

// serveHTTP puts the HTTP front end before srv until the test ends and
// returns its base URL.
func serveHTTP(t *testing.T, srv *testserver.Server) string {
	t.Helper()
	h, err := browser.NewHandler(srv.GRPCServer(), browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := browser.NewServer(h, nil)
	go func() { _ = hs.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	})
	return "http://" + lis.Addr().String()
}
