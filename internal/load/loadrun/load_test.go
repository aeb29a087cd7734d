package loadrun

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// TestLoadSmoke runs the load core for a few seconds against an in-process
// server with two lease slots and four clients: every cycle must succeed,
// some must complete, and neither the clients' count nor ListLeases may
// ever see more than two leases.
func TestLoadSmoke(t *testing.T) {
	if err := encode.Check(context.Background(), ""); err != nil {
		t.Fatalf("the smoke test renders real animations: %v", err)
	}
	const capacity, token = 2, "smoke-admin-token"
	reg := lease.NewMemory(lease.Config{Capacity: capacity})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg, AdminToken: token})

	var progress bytes.Buffer
	rep, err := Run(t.Context(), Config{
		Addr:       srv.Addr,
		Clients:    4,
		Duration:   3 * time.Second,
		Drain:      10 * time.Second,
		AdminToken: token,
		Width:      64,
		Height:     64,
		Frames:     10,
		FPS:        30,
		// Refused clients come back soon, so the few seconds see contention.
		MaxBackoff: 200 * time.Millisecond,
		Progress:   &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep.Judge(2)
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Logf("progress:\n%s\nreport:\n%s", progress.String(), table.String())

	if rep.Failed != 0 {
		t.Errorf("%d failed cycles: %v", rep.Failed, rep.Failures)
	}
	if rep.Completed == 0 {
		t.Error("no cycle completed")
	}
	if rep.OverAdmission || rep.Leases.MaxHeld > capacity || rep.Leases.MaxListed > capacity {
		t.Errorf("over-admission: clients held %d, ListLeases showed %d, capacity %d",
			rep.Leases.MaxHeld, rep.Leases.MaxListed, capacity)
	}
	if rep.Leases.Capacity != capacity {
		t.Errorf("capacity learned from ListLeases is %d, want %d", rep.Leases.Capacity, capacity)
	}
	if rep.Leases.Polls == 0 || rep.Leases.PollErrors != 0 {
		t.Errorf("ListLeases: %d polls, %d errors (%s)", rep.Leases.Polls, rep.Leases.PollErrors, rep.Leases.LastPollError)
	}
	if rep.AcquireAll.N < rep.Completed || rep.FirstFragment.N != rep.Completed {
		t.Errorf("samples: %d acquires, %d first fragments for %d completed", rep.AcquireAll.N, rep.FirstFragment.N, rep.Completed)
	}
	if rep.FloorTCPEcho.N == 0 || rep.FloorHealthCheck.N == 0 || rep.FloorTCPEchoErrors+rep.FloorHealthCheckErrors != 0 {
		t.Errorf("floor probes: %d TCP echo samples (%d errors), %d health Check samples (%d errors)",
			rep.FloorTCPEcho.N, rep.FloorTCPEchoErrors, rep.FloorHealthCheck.N, rep.FloorHealthCheckErrors)
	}
	if rep.Bytes == 0 {
		t.Error("no bytes counted")
	}
	if !rep.OK {
		t.Error("report not OK")
	}
}
