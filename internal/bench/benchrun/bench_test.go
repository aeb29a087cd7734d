package benchrun

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestBenchSmoke runs the command's core on a tiny video and checks that
// every figure is there and the streamed bytes matched their trailer.
func TestBenchSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Width, cfg.Height, cfg.Frames, cfg.Reps = 128, 128, 10, 1
	cfg.Matplotlib, cfg.Plain = Off, false
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := rep.EndToEnd
	if len(e.Runs) != 1 || e.MedianFPS <= 0 || e.MedianFirstFragment <= 0 || e.Bytes <= 0 || len(e.SHA256) != 64 {
		t.Fatalf("end-to-end figures missing: %+v", e)
	}
	if r := e.Runs[0]; r.FirstFragment > r.Seconds || r.Header > r.FirstFragment || r.Fragments < 1 {
		t.Errorf("end-to-end timeline out of order: %+v", r)
	}
	if rep.Render.FPS <= 0 {
		t.Errorf("render alone: %+v", rep.Render)
	}
	if len(rep.Encoders) != 3 {
		t.Fatalf("%d encoder configurations, want 3", len(rep.Encoders))
	}
	for _, enc := range rep.Encoders {
		if enc.MedianFPS <= 0 || enc.Bytes <= 0 || len(enc.Runs) != 1 {
			t.Errorf("%s: %+v", enc.Name, enc)
		}
	}
	// Same frames, same settings: the stream must be what ffmpeg alone makes.
	if w := rep.encoder("whirl"); w.SHA256 != e.SHA256 {
		t.Errorf("streamed sha256 %s, ffmpeg alone with whirl settings %s", e.SHA256, w.SHA256)
	}
	if rep.Matplotlib.Ran || !strings.Contains(rep.Matplotlib.Note, "skipped") {
		t.Errorf("matplotlib: %+v", rep.Matplotlib)
	}
	// Every target judged is a real comparison: a figure measured in this
	// run, a limit (most measured in it too), their ratio, and the verdict
	// the two imply.
	// Only matplotlib, switched off here, may be skipped.
	if len(rep.Targets) != 8 {
		t.Fatalf("%d targets, want 8: %+v", len(rep.Targets), rep.Targets)
	}
	for _, tg := range rep.Targets {
		if tg.Name == "end-to-end vs matplotlib" {
			if tg.Status != "SKIP" || tg.Limit != 0 || tg.Ratio != 0 {
				t.Errorf("matplotlib off, yet its target reads %+v", tg)
			}
			continue
		}
		if tg.Got <= 0 || tg.Limit <= 0 || tg.Ratio <= 0 {
			t.Errorf("target %q has no figures: %+v", tg.Name, tg)
			continue
		}
		wantPass := tg.Got >= tg.Limit
		if strings.HasPrefix(tg.Want, "≤") {
			wantPass = tg.Got <= tg.Limit
		}
		if want := map[bool]string{true: "PASS", false: "MISS"}[wantPass]; tg.Status != want {
			t.Errorf("target %q: got %g against limit %g is %s, reported %s", tg.Name, tg.Got, tg.Limit, want, tg.Status)
		}
	}
	if b := rep.Budget; b.RenderCPUPerFrameMs <= 0 || b.EncodeCPUPerFrameMs <= 0 || b.E2ECPUPerFrameMs <= 0 || b.MaxFPS <= 0 {
		t.Errorf("CPU budget not measured: %+v", b)
	}
	if r := e.Runs[0]; r.Chunks < 2 || r.ServerElapsed <= 0 || r.ServerEncode <= 0 || r.ChildCPU <= 0 {
		t.Errorf("end-to-end run lacks the server's or ffmpeg's figures: %+v", r)
	}

	// The cache round: a hit, and however the five identical requests met
	// (a tiny video may finish before the last arrives), one render.
	if len(rep.Cache.Rounds) != 1 {
		t.Fatalf("%d cache rounds, want 1", len(rep.Cache.Rounds))
	}
	c := rep.Cache.Rounds[0]
	if c.Hit.Source != "VIDEO_SOURCE_CACHED" || c.Cold.Source != "VIDEO_SOURCE_RENDERED" || c.Hit.SHA256 != e.SHA256 {
		t.Errorf("cache round: cold %s, hit %s (sha256 %s, end-to-end %s)", c.Cold.Source, c.Hit.Source, c.Hit.SHA256, e.SHA256)
	}
	if c.SharedSources["VIDEO_SOURCE_RENDERED"] != 1 || len(c.Shared) != sharers {
		t.Errorf("five identical requests: sources %v, want exactly one render", c.SharedSources)
	}

	// The concurrency round: both pipelines ran five renders.
	if cr := rep.Concurrent; cr.Renders != 5 || len(cr.Single) != 1 || len(cr.Segment) != 1 || cr.Single[0] <= 0 || cr.Segment[0] <= 0 {
		t.Errorf("concurrency round: %+v", cr)
	}

	var table bytes.Buffer
	rep.WriteTable(&table)
	for _, want := range []string{"end-to-end at the gRPC client", "ffmpeg alone, whirl settings", "libx264 medium/CRF 23", "cache and shared renders", "five renders at once", "frames from a file", "targets:"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.EndToEnd.MedianFPS != e.MedianFPS {
		t.Errorf("JSON round trip: %v", err)
	}
}

// BenchmarkEndToEnd streams a 720×720, 60-frame animation from an
// in-process server to a gRPC client per iteration.
func BenchmarkEndToEnd(b *testing.B) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Frames = 60
	srv, err := StartServer(0)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	var secs, first float64
	var n int
	var size int64
	for b.Loop() {
		r, err := srv.EndToEnd(ctx, cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		secs += r.Seconds
		first += r.FirstFragment
		n++
		size = r.Bytes
	}
	b.ReportMetric(float64(n*cfg.Frames)/secs, "frames/s")
	b.ReportMetric(1000*first/float64(n), "first-fragment-ms")
	b.ReportMetric(float64(size), "mp4-bytes")
}
