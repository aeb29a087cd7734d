package main

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/service"
)

// TestLimitFlags covers every flag limitFlags registers: a good value reaches
// the service configuration, a bad one is refused naming the flag, and the
// flag is in docs/CONFIGURATION.md's table. A limit flag added without a case fails.
func TestLimitFlags(t *testing.T) {
	tests := map[string]struct {
		good string
		want func(service.Config) bool
		bad  string
	}{
		"client-key":     {"header:X-Client", func(c service.Config) bool { return c.ClientHeader == "x-client" }, "header:grpc-timeout"},
		"still-rate":     {"2.5", func(c service.Config) bool { return c.StillLimits.Rate == 2.5 }, "-1"},
		"still-burst":    {"7", func(c service.Config) bool { return c.StillLimits.Burst == 7 }, "0"},
		"still-inflight": {"3", func(c service.Config) bool { return c.StillLimits.InFlight == 3 }, "2000"},
		"curve-rate":     {"50", func(c service.Config) bool { return c.CurveLimits.Rate == 50 }, "-0.5"},
		"curve-burst":    {"9", func(c service.Config) bool { return c.CurveLimits.Burst == 9 }, "0"},
		"curve-inflight": {"0", func(c service.Config) bool { return c.CurveLimits.InFlight == 0 }, "-1"},
		"video-rate":     {"5", func(c service.Config) bool { return c.VideoLimits.Rate == 5 }, "-1"},
		"video-burst":    {"11", func(c service.Config) bool { return c.VideoLimits.Burst == 11 }, "0"},
		"video-inflight": {"6", func(c service.Config) bool { return c.VideoLimits.InFlight == 6 }, "2000"},
		"still-slots":    {"3", func(c service.Config) bool { return c.StillSlots == 3 }, "0"},
		"still-nice":     {"5", func(c service.Config) bool { return c.StillNice == 5 }, "20"},
		"still-queue":    {"5", func(c service.Config) bool { return c.StillQueue.MaxWaiting == 5 }, "0"},
		"still-max-wait": {"750ms", func(c service.Config) bool {
			return c.StillQueue == queue.Limits{MaxWaiting: 8, MaxWait: 750 * time.Millisecond}
		}, "0s"},
		"render-max-wait": {"0s", func(c service.Config) bool { return c.RenderMaxWait == 0 }, "2h"},
	}
	doc, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	var l limitFlags
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	l.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		t.Run(f.Name, func(t *testing.T) {
			tt, ok := tests[f.Name]
			if !ok {
				t.Fatalf("limit flag --%s has no case here", f.Name)
			}
			if !strings.Contains(string(doc), "| `--"+f.Name+"` |") {
				t.Errorf("%s's flag table lacks --%s", configDoc, f.Name)
			}
			cfg, err := parseConfig([]string{"--" + f.Name, tt.good}, noEnv)
			if err != nil {
				t.Fatalf("--%s %s: %v", f.Name, tt.good, err)
			}
			var sc service.Config
			cfg.limits.apply(&sc)
			if !tt.want(sc) {
				t.Errorf("--%s %s gave %+v", f.Name, tt.good, sc)
			}
			if _, err := parseConfig([]string{"--" + f.Name, tt.bad}, noEnv); err == nil || !strings.Contains(err.Error(), "--"+f.Name) {
				t.Errorf("--%s %s: err %v, want one naming the flag", f.Name, tt.bad, err)
			}
		})
	})
}

func noEnv(string) (string, bool) { return "", false }
