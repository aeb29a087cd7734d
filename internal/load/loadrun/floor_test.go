package loadrun

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// TestFloorProbes runs both floor probes against an in-process server (with
// its health service) for a moment: each must take samples, all of them
// positive and without errors, and leave no goroutine behind.
func TestFloorProbes(t *testing.T) {
	reg := lease.NewMemory(lease.Config{Capacity: 1})
	t.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(t, service.Config{Leases: reg})
	conn := testserver.Dial(t, srv.Addr)
	check := healthCheck(conn)
	if err := check(t.Context()); err != nil {
		t.Fatalf("health Check: %v", err)
	}
	// What runs from here on must be gone when the probes are.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	echo, err := newTCPEcho()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	var tcp, health floorSamples
	var wg sync.WaitGroup
	wg.Go(func() { tcp = floorProbe(ctx, rand.New(rand.NewPCG(1, floorStream)), echo.roundTrip) })
	wg.Go(func() { health = floorProbe(ctx, rand.New(rand.NewPCG(1, floorStream+1)), check) })
	wg.Wait()
	echo.Close()

	for _, p := range []struct {
		name string
		s    floorSamples
	}{{"TCP echo", tcp}, {"health Check", health}} {
		// 500 ms at one sample every 10-30 ms (plus the sample itself).
		if n := len(p.s.d); n < 5 || n > 50 {
			t.Errorf("%s: %d samples in 500 ms, want 5-50", p.name, n)
		}
		if p.s.errors != 0 {
			t.Errorf("%s: %d errors", p.name, p.s.errors)
		}
		for _, d := range p.s.d {
			if d <= 0 {
				t.Errorf("%s: sample %v, want > 0", p.name, d)
				break
			}
		}
		l := latency(p.s.d)
		t.Logf("%s: n %d, p50 %.3f ms, p99 %.3f ms, max %.3f ms", p.name, l.N, l.P50, l.P99, l.Max)
	}
}
