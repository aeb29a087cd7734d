package main

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/client"
)

func TestProgressBar(t *testing.T) {
	var out strings.Builder
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	b := newProgressBar(&out, clock)
	step := func(d time.Duration, p client.Progress) string {
		now = now.Add(d)
		before := out.Len()
		b.update(p)
		return out.String()[before:]
	}
	if got := step(0, client.Progress{Phase: client.PhaseLease, Attempt: 1}); !strings.Contains(got, "acquiring a lease") {
		t.Errorf("lease: %q", got)
	}
	if got := step(time.Millisecond, client.Progress{Phase: client.PhaseLease, Attempt: 1, RetryIn: 1500 * time.Millisecond}); !strings.Contains(got, "retrying in 1.5s (attempt 1)") {
		t.Errorf("refused: %q", got)
	}
	if got := step(time.Second, client.Progress{Phase: client.PhaseQueued, QueuePosition: 2}); !strings.Contains(got, "position 2") {
		t.Errorf("queued: %q", got)
	}
	step(time.Second, client.Progress{Phase: client.PhaseRendering, FramesTotal: 300})
	got := step(10*time.Second, client.Progress{Phase: client.PhaseRendering, FramesDone: 100, FramesTotal: 300, Bytes: 3 << 20})
	if !strings.HasPrefix(got, "\r\x1b[K[########................]  33%  100/300 frames  3.0 MiB  ETA 20s") {
		t.Errorf("rendering: %q", got)
	}
	if got := step(10*time.Millisecond, client.Progress{Phase: client.PhaseRendering, FramesDone: 101, FramesTotal: 300}); got != "" {
		t.Errorf("redrawn after 10ms: %q", got)
	}
	if got := step(10*time.Millisecond, client.Progress{Phase: client.PhaseDone, FramesDone: 300, FramesTotal: 300, Bytes: 9 << 20}); !strings.Contains(got, "100%  300/300 frames  9.0 MiB  in 12s") {
		t.Errorf("done: %q", got)
	}
	b.finish()
	if !strings.HasSuffix(out.String(), "\n") {
		t.Error("finish did not end the line")
	}
	var nilBar *progressBar
	nilBar.update(client.Progress{})
	nilBar.finish()
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	a := &app{g: newGlobals(func(string) string { return "" })}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	a.g.register(fs)
	n := fs.Int("n", 0, "")
	pos, err := parseArgs(fs, []string{"A", "--n", "3", "B", "--json", "--", "--C"})
	if err != nil || *n != 3 || !a.g.json || strings.Join(pos, ",") != "A,B,--C" {
		t.Errorf("pos %q n %d json %v err %v", pos, *n, a.g.json, err)
	}
}
