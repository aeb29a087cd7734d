package loadrun

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// TestFloodSmoke runs a short flood against an in-process server with the
// still limits on: the flooder (127.0.0.2) gets answers and refusals on its
// in-flight cap, counted by quota, the well-behaved client (127.0.0.3) is
// not limited by them and completes its cycles, and the GenerateCurve probe
// has samples idle and under flood.
func TestFloodSmoke(t *testing.T) {
	if err := encode.Check(context.Background(), ""); err != nil {
		t.Fatalf("the smoke test renders real animations: %v", err)
	}
	reg := lease.NewMemory(lease.Config{Capacity: 2})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{
		Leases:      reg,
		StillLimits: service.ClientLimits{InFlight: 2},
		StillSlots:  1,
		StillQueue:  queue.Limits{MaxWaiting: 4, MaxWait: 2 * time.Second},
	})
	rep, err := Run(t.Context(), Config{
		Addr: srv.Addr, Clients: 1, Capacity: 2, Duration: 2 * time.Second, Drain: 10 * time.Second,
		Width: 64, Height: 64, Frames: 10, FPS: 30, MaxBackoff: 100 * time.Millisecond,
		Flood: &Flood{Calls: 6, Size: 256, Conns: 2, Idle: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	rep.Judge(2)
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Logf("report:\n%s", table.String())
	f := rep.Flood
	switch {
	case f == nil:
		t.Fatal("no flood report")
	case f.Answered == 0 || f.RefusedBy["still_inflight"] == 0 || f.RefusedMS.N != f.RefusedBy["still_inflight"]:
		t.Errorf("flood answered %d, refused %v (%d timed): want both, refusals on still_inflight only", f.Answered, f.RefusedBy, f.RefusedMS.N)
	case len(f.Errors) != 0:
		t.Errorf("flood errors %v", f.Errors)
	case rep.Failed != 0 || rep.Completed == 0:
		t.Errorf("well-behaved client: %d completed, %d failed %v", rep.Completed, rep.Failed, rep.Failures)
	case f.CurveIdleMS.N == 0 || f.CurveFloodMS.N == 0 || f.CurveIdleErrs+f.CurveFloodErrs != 0:
		t.Errorf("GenerateCurve probe: %d idle samples, %d under flood, %d+%d errors", f.CurveIdleMS.N, f.CurveFloodMS.N, f.CurveIdleErrs, f.CurveFloodErrs)
	case len(rep.Targets) < 7:
		t.Errorf("targets %v: want the flood's beside the run's", rep.Targets)
	}
}
