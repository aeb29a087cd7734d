package protocolbench_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/bench/benchrun"
	"github.com/whirl-dev/whirl/internal/bench/protocolbench"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// full runs the measurement docs/PERFORMANCE.md quotes instead of the quick one:
//
//	go test -run TestMeasure -v ./internal/bench/protocolbench -args -full
var full = flag.Bool("full", false, "measure the bench's default video over 3 rounds (the figures of docs/PERFORMANCE.md)")

// TestMeasure renders the same video over every protocol: each run checks
// its stream, the bytes are identical across protocols, and the figures are
// real (positive, first fragment before the end).
func TestMeasure(t *testing.T) {
	cfg := benchrun.DefaultConfig()
	if !*full {
		cfg.Width, cfg.Height, cfg.Frames, cfg.Wheels, cfg.Reps = 128, 128, 45, 5, 1
	}
	rep, err := protocolbench.Measure(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("%d results, want 3", len(rep.Results))
	}
	for _, r := range rep.Results {
		if len(r.Runs) != cfg.Reps || r.MedianFPS <= 0 || r.RatioToGRPC <= 0 {
			t.Errorf("%s: %+v", r.Protocol, r)
		}
		for _, run := range r.Runs {
			if run.FirstFragment <= 0 || run.FirstFragment > run.Seconds || run.Bytes == 0 {
				t.Errorf("%s: run %+v", r.Protocol, run)
			}
		}
	}
	var b strings.Builder
	rep.WriteTable(&b)
	t.Log("\n" + b.String())
	if *full {
		rep.WriteTable(os.Stdout)
	}
}
