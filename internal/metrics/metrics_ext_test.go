package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/metrics"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestScenarioCounters scrapes /metrics after a scripted scenario and checks
// exact values: six acquires with one refusal, one render, and five releases.
func TestScenarioCounters(t *testing.T) {
	m := metrics.New()
	reg := lease.NewMemory(lease.Config{Capacity: 5, Observer: m})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg, Observer: m, GRPCMetrics: m.GRPC})
	gauges := metrics.Gauges{
		Leases: func() (int, int, int) {
			snap, _ := reg.List(context.Background())
			return len(snap.Leases), snap.Capacity, snap.Waiting
		},
		Renders: srv.RenderStats,
	}
	api := whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr))
	ctx := context.Background()

	var ids []string
	refusals := 0
	for range 6 {
		l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: "scenario"})
		if err != nil {
			refusals++
			continue
		}
		ids = append(ids, l.GetLeaseId())
	}
	if len(ids) != 5 || refusals != 1 {
		t.Fatalf("granted %d refused %d, want 5 and 1", len(ids), refusals)
	}
	for _, id := range ids[1:] {
		if _, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: id}); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := api.RenderAnimation(ctx, &whirlv1.RenderAnimationRequest{
		LeaseId: ids[0],
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: 5}},
		Video:   &whirlv1.VideoOptions{Width: 96, Height: 96, Fps: 10, Frames: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if tr := ev.GetTrailer(); tr != nil {
			total = tr.GetTotalBytes()
		}
	}
	if _, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: ids[0]}); err != nil {
		t.Fatal(err)
	}

	body := scrape(t, m.Handler(gauges, false))
	for _, want := range []string{
		"whirl_lease_grants_total 5",
		"whirl_lease_refusals_total 1",
		"whirl_lease_releases_total 5",
		"whirl_lease_expiries_total 0",
		"whirl_leases_active 0",
		"whirl_lease_capacity 5",
		"whirl_lease_waiters 0",
		`whirl_renders_total{outcome="ok"} 1`,
		`whirl_renders_total{outcome="failed"} 0`,
		"whirl_renders_in_flight 0",
		"whirl_renders_queued 0",
		"whirl_frames_streamed_total 10",
		"whirl_bytes_streamed_total " + itoa(total),
		"whirl_ffmpeg_failures_total 0",
		"whirl_render_seconds_count 1",
		"whirl_encode_seconds_count 1",
		"whirl_render_queue_seconds_count 1",
		`grpc_server_handled_total{grpc_code="ResourceExhausted",grpc_method="AcquireLease",grpc_service="whirl.v1.AnimationService",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="AcquireLease",grpc_service="whirl.v1.AnimationService",grpc_type="unary"} 5`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="RenderAnimation",grpc_service="whirl.v1.AnimationService",grpc_type="server_stream"} 1`,
		`grpc_server_handling_seconds_count{grpc_method="ReleaseLease",grpc_service="whirl.v1.AnimationService",grpc_type="unary"} 5`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scraped:\n%s", grepWhirl(body))
	}
}

// TestExpiryCounted lets a lease run out in a synctest bubble, whose clock
// the registry's expiry timer follows.
func TestExpiryCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = time.Minute
		m := metrics.New()
		reg := lease.NewMemory(lease.Config{Capacity: 1, TTL: ttl, Observer: m})
		t.Cleanup(func() { _ = reg.Close() })
		h := m.Handler(metrics.Gauges{
			Leases: func() (int, int, int) {
				snap, _ := reg.List(context.Background())
				return len(snap.Leases), snap.Capacity, snap.Waiting
			},
		}, false)
		if _, err := reg.Acquire(t.Context(), lease.AcquireRequest{Holder: "expiring"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ttl - time.Nanosecond)
		synctest.Wait()
		before := scrape(t, h)
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		after := scrape(t, h)
		for body, wants := range map[string][]string{
			before: {"whirl_lease_expiries_total 0", "whirl_leases_active 1"},
			after:  {"whirl_lease_grants_total 1", "whirl_lease_expiries_total 1", "whirl_lease_releases_total 0", "whirl_leases_active 0"},
		} {
			for _, want := range wants {
				if !strings.Contains(body, want+"\n") {
					t.Errorf("/metrics lacks %q; scraped:\n%s", want, grepWhirl(body))
				}
			}
		}
	})
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	m := metrics.New()
	for _, tt := range []struct {
		pprof bool
		want  int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		hs := httptest.NewServer(m.Handler(metrics.Gauges{}, tt.pprof))
		resp, err := http.Get(hs.URL + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		hs.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("pprof=%v: status %d, want %d", tt.pprof, resp.StatusCode, tt.want)
		}
	}
}

func TestBuildInfo(t *testing.T) {
	m := metrics.New()
	m.SetBuildInfo(metrics.Build{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26.0", FFmpeg: "7.1.1"})
	want := `whirl_build_info{ffmpeg="7.1.1",goversion="go1.26.0",revision="abc",version="v1.2.3"} 1`
	if body := scrape(t, m.Handler(metrics.Gauges{}, false)); !strings.Contains(body, want) {
		t.Errorf("no %s in:\n%s", want, grepWhirl(body))
	}
}

// scrape reads /metrics through h without a socket, which would keep a
// synctest bubble from ever going idle.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", rec.Code)
	}
	return rec.Body.String()
}

func grepWhirl(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "whirl_") || strings.HasPrefix(l, "grpc_server_handled_total") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
