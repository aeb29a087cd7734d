package loadrun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// Flood makes a run an abuse test: one client, on a source address of its
// own, keeps Calls RenderStill calls at Size×Size under way for the run's
// Duration, while the run's clients, all on another address, go through the
// usual acquire → render → release cycle and a probe calls GenerateCurve
// every 10-30 ms. The probe first runs alone for Idle: that is its idle
// baseline, taken in the same run.
type Flood struct {
	Calls int
	Size  int
	// Conns is the flooding client's connections; its calls share them
	// round robin.
	Conns int
	Idle  time.Duration
	// IgnoreRetry makes the flooder call again at once after a refusal
	// (a careless script); otherwise it waits as the run's clients do (the
	// server's retry hint with jitter, at most Config.MaxBackoff).
	IgnoreRetry bool
}

// The flooding and the well-behaved client's source addresses: both
// loopback, so the server keys them apart.
var (
	floodSource = net.IPv4(127, 0, 0, 2)
	goodSource  = net.IPv4(127, 0, 0, 3)
)

// FloodReport is what the flood did and what the well-behaved client's
// GenerateCurve probe saw before and during it (ms).
type FloodReport struct {
	Calls       int  `json:"calls"`
	Size        int  `json:"size"`
	Conns       int  `json:"conns"`
	IgnoreRetry bool `json:"ignore_retry"`
	// Answered stills and their latency; refusals by QuotaFailure subject
	// and their latency; any other outcome by status code.
	Answered       int            `json:"answered"`
	AnsweredMS     Latency        `json:"answered_ms"`
	RefusedBy      map[string]int `json:"refused_by"`
	RefusedMS      Latency        `json:"refused_ms"`
	Errors         map[string]int `json:"errors,omitempty"`
	CurveIdleMS    Latency        `json:"curve_idle_ms"`
	CurveFloodMS   Latency        `json:"curve_flood_ms"`
	CurveIdleErrs  int            `json:"curve_idle_errors,omitempty"`
	CurveFloodErrs int            `json:"curve_flood_errors,omitempty"`
}

// flood is the flooding client and the GenerateCurve probe while they run.
type flood struct {
	cfg  Flood
	wg   sync.WaitGroup
	mu   sync.Mutex
	rep  FloodReport
	ok   []time.Duration
	no   []time.Duration
	idle floorSamples
	busy floorSamples
}

// idleBaseline runs the GenerateCurve probe on conn alone for cfg.Idle.
func idleBaseline(ctx context.Context, cfg Flood, conn *grpc.ClientConn, seed uint64) *flood {
	f := &flood{cfg: cfg, rep: FloodReport{RefusedBy: map[string]int{}, Errors: map[string]int{}}}
	ictx, cancel := context.WithTimeout(ctx, cfg.Idle)
	defer cancel()
	f.idle = floorProbe(ictx, rand.New(rand.NewPCG(seed, floorStream+2)), curveCall(conn))
	return f
}

// start sets the flooder's calls going on conns and the probe on probe,
// until the run stops starting new work.
func (f *flood) start(r *loadRun, conns []*grpc.ClientConn, probe *grpc.ClientConn) {
	f.wg.Go(func() {
		f.busy = floorProbe(r.runCtx, rand.New(rand.NewPCG(r.cfg.Seed, floorStream+3)), curveCall(probe))
	})
	for i := range f.cfg.Calls {
		api := whirlv1.NewAnimationServiceClient(conns[i%len(conns)])
		rng := rand.New(rand.NewPCG(r.cfg.Seed, floorStream+4+uint64(i)))
		f.wg.Go(func() { f.caller(r, api, rng) })
	}
}

// caller is one of the flooder's calls, made again and again.
func (f *flood) caller(r *loadRun, api whirlv1.AnimationServiceClient, rng *rand.Rand) {
	for r.runCtx.Err() == nil {
		ctx, cancel := context.WithTimeout(r.hardCtx, r.cfg.RenderTimeout)
		var trailer metadata.MD
		t := time.Now()
		_, err := api.RenderStill(ctx, &whirlv1.RenderStillRequest{
			Width: int32(f.cfg.Size), Height: int32(f.cfg.Size),
			Source: &whirlv1.RenderStillRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: rng.Uint64()}},
		}, grpc.Trailer(&trailer))
		d := time.Since(t)
		cancel()
		if err != nil && r.hardCtx.Err() != nil {
			return
		}
		if refused := f.record(err, d, trailer); refused != nil && !f.cfg.IgnoreRetry {
			r.sleep(r.backoff(refused, 1, rng))
		}
	}
}

// record counts one call's outcome and returns it if it was a refusal.
func (f *flood) record(err error, d time.Duration, trailer metadata.MD) *refusal {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := status.Convert(err)
	switch st.Code() {
	case codes.OK:
		f.rep.Answered++
		f.ok = append(f.ok, d)
	case codes.ResourceExhausted:
		f.rep.RefusedBy[quotaSubject(st)]++
		f.no = append(f.no, d)
		return &refusal{st: st, pushback: pushback(trailer)}
	default:
		f.rep.Errors[st.Code().String()]++
	}
	return nil
}

// finish waits for the flooder and the probe and returns the report.
func (f *flood) finish() *FloodReport {
	f.wg.Wait()
	rep := f.rep
	rep.Calls, rep.Size, rep.Conns, rep.IgnoreRetry = f.cfg.Calls, f.cfg.Size, f.cfg.Conns, f.cfg.IgnoreRetry
	rep.AnsweredMS, rep.RefusedMS = latency(f.ok), latency(f.no)
	rep.CurveIdleMS, rep.CurveIdleErrs = latency(f.idle.d), f.idle.errors
	rep.CurveFloodMS, rep.CurveFloodErrs = latency(f.busy.d), f.busy.errors
	return &rep
}

// curveCall returns a probe sample calling GenerateCurve on conn.
func curveCall(conn *grpc.ClientConn) func(context.Context) error {
	api := whirlv1.NewAnimationServiceClient(conn)
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, floorTimeout)
		defer cancel()
		_, err := api.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 7})
		return err
	}
}

// floodTargets are the abuse test's goals: the well-behaved client barely
// notices the flood, and the flood is turned away quickly and cheaply.
func (r *Report) floodTargets() []Target {
	f := r.Flood
	t := []Target{{
		Name: "GenerateCurve p99 under flood <= 3 x idle p99", Met: f.CurveFloodMS.N > 0 && f.CurveFloodMS.P99 <= 3*f.CurveIdleMS.P99,
		Observed: fmt.Sprintf("%.2f ms vs idle %.2f ms (%.2f x)", f.CurveFloodMS.P99, f.CurveIdleMS.P99, f.CurveFloodMS.P99/f.CurveIdleMS.P99),
	}, {
		Name: "AcquireLease p99 <= 1.25 x health Check p99", Met: r.AcquireAll.N > 0 && r.AcquireAll.P99 <= 1.25*r.FloorHealthCheck.P99,
		Observed: fmt.Sprintf("%.2f ms vs %.2f ms (%.2f x)", r.AcquireAll.P99, r.FloorHealthCheck.P99, r.AcquireAll.P99/r.FloorHealthCheck.P99),
	}, {
		Name: "flood refusal p99 <= 5 ms", Met: f.RefusedMS.N > 0 && f.RefusedMS.P99 <= 5,
		Observed: fmt.Sprintf("%.2f ms over %d refusals", f.RefusedMS.P99, f.RefusedMS.N),
	}}
	if p := r.Process; p != nil {
		t = append(t, Target{Name: "server peak RSS <= 128 MiB", Met: p.PeakRSSKB <= 128<<10, Observed: kb(p.PeakRSSKB)})
	}
	return t
}

// writeFlood prints the flood's section of the table.
func (r *Report) writeFlood(p printer) {
	f := r.Flood
	if f == nil {
		return
	}
	retry := "waits the server's retry hint"
	if f.IgnoreRetry {
		retry = "calls again at once when refused"
	}
	p.line("flood           %d RenderStill calls at %dx%d from %s on %d connections (%s); well-behaved clients and probes from %s",
		f.Calls, f.Size, f.Size, floodSource, f.Conns, retry, goodSource)
	p.line("                answered %d, refused %d by quota %v, other errors %v; GenerateCurve probe errors idle %d, under flood %d",
		f.Answered, f.RefusedMS.N, f.RefusedBy, f.Errors, f.CurveIdleErrs, f.CurveFloodErrs)
	p.line("")
}
