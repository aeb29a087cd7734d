package tracing_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	"github.com/whirl-dev/whirl/internal/tracing"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

const renderMethod = "whirl.v1.AnimationService/RenderAnimation"

// lockedBuffer is a log destination several goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Split(bytes.TrimSpace(l.b.Bytes()), []byte("\n"))
}

// TestRenderAnimationTrace: configured by the OTEL_* variables alone, with
// each OTLP protocol, one RenderAnimation from the Go client gives one trace
// at a real receiver: the client's span, the server's under it (the W3C
// traceparent crossed the wire), the cache lookup and the render filling
// the cache under that, and the render's queue wait, segments drawn and
// encoded and stitching under the render. Each log line of the call
// carries the trace id.
func TestRenderAnimationTrace(t *testing.T) {
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(protocol, func(t *testing.T) {
			recv, endpoint := startReceiver(t, protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
			t.Setenv("OTEL_SERVICE_NAME", "whirl-under-test")
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") // ms: spans reach the receiver soon after they end
			tr, err := tracing.Setup(t.Context(), os.LookupEnv, "whirl", "test")
			if err != nil || !tr.Enabled() {
				t.Fatalf("Setup: %v, enabled %v", err, tr.Enabled())
			}
			t.Cleanup(func() { _ = tr.Shutdown(t.Context()) })
			var logs lockedBuffer
			reg := lease.NewMemory(lease.Config{})
			t.Cleanup(func() { _ = reg.Close() })
			srv := testserver.Start(t, service.Config{Leases: reg, TracerProvider: tr.Provider, Propagator: tr.Propagator,
				Logger: slog.New(tracing.LogHandler(slog.NewJSONHandler(&logs, nil)))})
			c, err := client.Dial(t.Context(), srv.Addr, client.WithTracing(tr.Provider, tr.Propagator))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			l, err := c.Acquire(t.Context(), client.AcquireOptions{})
			if err != nil {
				t.Fatal(err)
			}
			const frames = 40
			if _, err := c.Render(t.Context(), &whirlv1.RenderAnimationRequest{
				Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 7}},
				Video:  &whirlv1.VideoOptions{Width: 64, Height: 64, Frames: frames},
			}, io.Discard, client.WithLease(l.ID)); err != nil {
				t.Fatal(err)
			}
			var trace []receivedSpan
			deadline := time.Now().Add(30 * time.Second)
			for trace = renderTrace(recv.all()); !complete(trace); trace = renderTrace(recv.all()) {
				if time.Now().After(deadline) {
					t.Fatalf("the render's trace never completed; got %s", names(trace))
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("trace: %s", names(trace))
			checkTree(t, trace, frames)
			checkLogs(t, logs.lines(), hex.EncodeToString(trace[0].GetTraceId()))
			checkLeaseSpan(t, recv.all())
		})
	}
}

// renderTrace is every span of the trace holding RenderAnimation's server span.
func renderTrace(spans []receivedSpan) []receivedSpan {
	i := slices.IndexFunc(spans, func(s receivedSpan) bool {
		return s.GetName() == renderMethod && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER
	})
	if i < 0 {
		return nil
	}
	var out []receivedSpan
	for _, s := range spans {
		if bytes.Equal(s.GetTraceId(), spans[i].GetTraceId()) {
			out = append(out, s)
		}
	}
	return out
}

// complete: the spans that end last (the server's call, the render) are in.
func complete(trace []receivedSpan) bool {
	n := names(trace)
	return slices.Contains(n, "cache.fill") && slices.Contains(n, "render.stitch") && len(byName(trace, renderMethod)) == 2
}

func names(trace []receivedSpan) []string {
	var n []string
	for _, s := range trace {
		n = append(n, s.GetName())
	}
	return n
}

func byName(trace []receivedSpan, name string) []receivedSpan {
	var out []receivedSpan
	for _, s := range trace {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

// checkTree checks the trace is exactly the tree TestRenderAnimationTrace
// describes, and that the segments drawn add up to the video.
func checkTree(t *testing.T, trace []receivedSpan, frames int64) {
	t.Helper()
	var clientSpan, serverSpan receivedSpan
	for _, s := range byName(trace, renderMethod) {
		switch s.GetKind() {
		case tracepb.Span_SPAN_KIND_CLIENT:
			clientSpan = s
		case tracepb.Span_SPAN_KIND_SERVER:
			serverSpan = s
		}
	}
	if clientSpan.Span == nil || serverSpan.Span == nil || len(clientSpan.GetParentSpanId()) != 0 {
		t.Fatalf("want a root client span and a server span for %s; got %s", renderMethod, names(trace))
	}
	fill := byName(trace, "cache.fill")
	parentOf := map[string][]byte{
		renderMethod:    clientSpan.GetSpanId(), // the server's; the client's is the root
		"cache.lookup":  serverSpan.GetSpanId(),
		"cache.fill":    serverSpan.GetSpanId(),
		"render.queue":  fill[0].GetSpanId(),
		"frames.draw":   fill[0].GetSpanId(),
		"frames.encode": fill[0].GetSpanId(),
		"render.stitch": fill[0].GetSpanId(),
	}
	drawn := int64(0)
	for _, s := range trace {
		if s.service != "whirl-under-test" {
			t.Errorf("span %s from service %q, want OTEL_SERVICE_NAME's", s.GetName(), s.service)
		}
		if s.Span == clientSpan.Span {
			continue
		}
		want, ok := parentOf[s.GetName()]
		switch {
		case !ok:
			t.Errorf("unexpected span %s in the trace", s.GetName())
		case !bytes.Equal(s.GetParentSpanId(), want):
			t.Errorf("span %s has the wrong parent", s.GetName())
		}
		if s.GetName() == "frames.draw" {
			drawn += intAttr(s, "whirl.frame.count")
		}
	}
	for name, want := range map[string]int{"cache.lookup": 1, "cache.fill": 1, "render.queue": 1, "render.stitch": 1} {
		if got := len(byName(trace, name)); got != want {
			t.Errorf("%d %s spans, want %d", got, name, want)
		}
	}
	draws, encodes := len(byName(trace, "frames.draw")), len(byName(trace, "frames.encode"))
	if draws == 0 || draws != encodes || drawn != frames {
		t.Errorf("%d frames.draw spans (%d frames), %d frames.encode spans; want one of each per planned span, %d frames in all", draws, drawn, encodes, frames)
	}
}

func intAttr(s receivedSpan, key string) int64 {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetIntValue()
		}
	}
	return -1
}

// checkLogs: the server's log line for the RenderAnimation call carries
// the call's trace id.
func checkLogs(t *testing.T, lines [][]byte, traceID string) {
	t.Helper()
	n := 0
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["grpc.method"] != "RenderAnimation" {
			continue
		}
		n++
		if rec["trace_id"] != traceID {
			t.Errorf("log line of the traced call without its trace id %s: %s", traceID, line)
		}
	}
	if n == 0 {
		t.Errorf("no log line for RenderAnimation in %d lines", len(lines))
	}
}

// checkLeaseSpan: AcquireLease's registry call is a lease.acquire span
// under the call's server span.
func checkLeaseSpan(t *testing.T, spans []receivedSpan) {
	t.Helper()
	i := slices.IndexFunc(spans, func(s receivedSpan) bool {
		return s.GetName() == "whirl.v1.AnimationService/AcquireLease" && s.GetKind() == tracepb.Span_SPAN_KIND_SERVER
	})
	if i < 0 {
		t.Fatal("no AcquireLease server span")
	}
	if !slices.ContainsFunc(spans, func(s receivedSpan) bool {
		return s.GetName() == "lease.acquire" && bytes.Equal(s.GetParentSpanId(), spans[i].GetSpanId())
	}) {
		t.Errorf("no lease.acquire span under AcquireLease's in %s", names(spans))
	}
}
