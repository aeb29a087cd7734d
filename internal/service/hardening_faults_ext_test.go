package service_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/service"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// fakeFFmpeg writes an executable shell script standing in for ffmpeg.
func fakeFFmpeg(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRenderFaults proves that whatever goes wrong with the encoder, the
// client gets the documented status (UNAVAILABLE when ffmpeg is known to be
// unusable, INTERNAL when it fails during a render, DEADLINE_EXCEEDED when
// it hangs and the client gives up), never a trailer, and no internal
// detail (paths, ffmpeg's stderr) in the message; and that afterwards no
// render slot is held, the fake ffmpeg and everything it started are dead,
// and the lease is unpinned and renewable.
func TestRenderFaults(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	noise := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(garbage, noise, 0o600); err != nil {
		t.Fatal(err)
	}
	// A real fragmented MP4 of 5 frames, for an ffmpeg that answers a
	// 20-frame request with a well-formed video of the wrong length.
	short := filepath.Join(dir, "short.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=64x64:r=30",
		"-frames:v", "5", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "empty_moov+default_base_moof+frag_keyframe",
		"-f", "mp4", short).CombinedOutput(); err != nil {
		t.Fatalf("making the short MP4: %v\n%s", err, out)
	}

	tests := []struct {
		name string
		// ffmpeg is the script body of a fake ffmpeg; path overrides it.
		ffmpeg, path string
		encErr       error
		deadline     time.Duration
		want         codes.Code
		// header: the stream carries a header (and chunks) before failing.
		header bool
	}{
		{name: "ffmpeg known missing", encErr: encode.ErrFFmpegNotFound, want: codes.Unavailable},
		{name: "ffmpeg vanished after start-up", path: "/nonexistent/ffmpeg", want: codes.Internal},
		{name: "exits 1 at once", ffmpeg: "exit 1", want: codes.Internal},
		{name: "killed by a signal", ffmpeg: "kill -9 $$", want: codes.Internal},
		{name: "random bytes on stdout", ffmpeg: "cat >/dev/null &\ncat " + garbage + "\nwait", want: codes.Internal},
		{name: "absurd box size", ffmpeg: `cat >/dev/null &
printf '\377\377\377\360mdat'
cat ` + garbage + "\nwait", want: codes.Internal},
		{name: "media before the init segment", ffmpeg: `cat >/dev/null &
printf '\000\000\000\020mdat01234567'
wait`, want: codes.Internal},
		{name: "truncated 16 MiB moov", ffmpeg: `cat >/dev/null &
printf '\000\000\000\020ftypisom\000\000\002\000\001\000\000\000moov0123456789'
exit 0`, want: codes.Internal},
		{name: "reads everything, writes nothing", ffmpeg: "cat >/dev/null", want: codes.Internal},
		{name: "valid MP4 of the wrong length", ffmpeg: "cat >/dev/null &\ncat " + short + "\nwait", want: codes.Internal, header: true},
		{name: "hangs without reading", ffmpeg: "sleep 60 &\nwait", deadline: 1500 * time.Millisecond, want: codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := service.Config{EncoderErr: tt.encErr}
			switch {
			case tt.path != "":
				cfg.Encode.FFmpegPath = tt.path
			case tt.ffmpeg != "":
				cfg.Encode.FFmpegPath = fakeFFmpeg(t, tt.ffmpeg)
			}
			h := startHarness(t, cfg, 1, nil)
			leases := h.acquireN(t, 1)
			deadline := 20 * time.Second
			if tt.deadline > 0 {
				deadline = tt.deadline
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			r := collect(t, mustStream(t, h, ctx, tinyVideo(leases[0].token, 1, 20)), nil)
			st := status.Convert(r.err)
			if st.Code() != tt.want || r.trailer != nil {
				t.Errorf("stream ended %v, trailer %v; want %v and no trailer", r.err, r.trailer, tt.want)
			}
			if (r.header != nil) != tt.header || tt.header && r.chunks == 0 {
				t.Errorf("header %v, %d chunks; want header: %v", r.header, r.chunks, tt.header)
			}
			if m := st.Message(); strings.Contains(m, "/") || strings.Contains(m, "stderr") {
				t.Errorf("status message leaks internals: %q", m)
			}
			if tt.encErr != nil {
				if n := len(h.pids.all()); n != 0 {
					t.Errorf("%d encoders started with ffmpeg known missing", n)
				}
				resp, err := h.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service.HealthRender})
				if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
					t.Errorf("health of %s: %v, %v; want NOT_SERVING", service.HealthRender, resp, err)
				}
			}
			h.assertQuiescent(t, leases)
		})
	}
}

// panicEncoder panics in WriteFrame on frame panicAt (1-based).
type panicEncoder struct {
	service.FrameEncoder
	panicAt int64
	n       atomic.Int64
}

func (p *panicEncoder) WriteFrame(yuv []byte) error {
	if p.n.Add(1) == p.panicAt {
		panic("encoder exploded on frame 3")
	}
	return p.FrameEncoder.WriteFrame(yuv)
}

// TestPanicInRenderFailsOnlyThatStream proves that a panic inside one
// render's pipeline (here in the encoder's WriteFrame on frame 3) ends that
// stream alone with INTERNAL and no trailer, while a concurrent render on
// another lease finishes with a valid trailer, and that the server goes on
// serving: slot, lease and ffmpeg are cleaned up, the panicking lease can
// render again, health is SERVING.
func TestPanicInRenderFailsOnlyThatStream(t *testing.T) {
	const panicWidth = 96 // requests this wide get the panicking encoder
	h := startHarness(t, service.Config{RenderSlots: 2}, 2, func(enc service.FrameEncoder, o encode.Options) service.FrameEncoder {
		if o.Width == panicWidth {
			return &panicEncoder{FrameEncoder: enc, panicAt: 3}
		}
		return enc
	})
	leases := h.acquireN(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	normal := tinyVideo(leases[0].token, 11, 90)
	panicky := tinyVideo(leases[1].token, 12, 60)
	panicky.Video.Width = panicWidth
	var (
		wg      sync.WaitGroup
		results [2]result
	)
	// The normal render is under way before the other one panics.
	normalStream := mustStream(t, h, ctx, normal)
	wg.Go(func() { results[0] = collect(t, normalStream, nil) })
	eventually(t, 10*time.Second, "normal render started", func() string {
		if run, _ := h.srv.RenderStats(); run != 1 {
			return fmt.Sprintf("%d running", run)
		}
		return ""
	})
	wg.Go(func() { results[1] = collect(t, mustStream(t, h, ctx, panicky), nil) })
	wg.Wait()

	if r := results[0]; r.err != nil || r.trailer == nil || r.trailer.GetSha256() != sha(r.video) || r.trailer.GetFrames() != 90 {
		t.Errorf("concurrent normal render: err %v, trailer %v", r.err, r.trailer)
	}
	if r := results[1]; status.Code(r.err) != codes.Internal || r.trailer != nil {
		t.Errorf("panicking render: %v, trailer %v; want Internal and no trailer", r.err, r.trailer)
	}
	h.assertQuiescent(t, leases)

	// Still serving, on both leases.
	again := tinyVideo(leases[1].token, 13, 10)
	if r := collect(t, mustStream(t, h, ctx, again), nil); r.err != nil || r.trailer == nil {
		t.Errorf("render after the panic: %v", r.err)
	}
	resp, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health after the panic: %v, %v", resp, err)
	}
	if _, err := h.api.GenerateCurve(ctx, &whirlv1.GenerateCurveRequest{Seed: 1}); err != nil {
		t.Errorf("GenerateCurve after the panic: %v", err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("test ran out of time")
	}
}

// TestEncoderOutputBuffersBounded proves that an encoder that floods its
// output with well-formed but useless boxes (an ftyp, then 96 "free" boxes
// of 1 MiB each, never a moov) cannot make the server hold them all: the
// reader's per-box size limits must bound memory for the whole run of
// boxes, not just for each box. The heap may not grow by more than 64 MiB
// (room for a cap of the order of the 16 MiB index-box limit); the stream
// ends INTERNAL.
func TestEncoderOutputBuffersBounded(t *testing.T) {
	dir := t.TempDir()
	box := make([]byte, 1<<20)
	copy(box, "\x00\x10\x00\x00free")
	boxPath := filepath.Join(dir, "free")
	if err := os.WriteFile(boxPath, box, 0o600); err != nil {
		t.Fatal(err)
	}
	script := fakeFFmpeg(t, `printf '\000\000\000\020ftypisom\000\000\002\000'
i=0
while [ $i -lt 96 ]; do cat `+boxPath+`; i=$((i+1)); done
cat >/dev/null`)
	h := startHarness(t, service.Config{Encode: encode.Options{FFmpegPath: script}}, 1, nil)
	leases := h.acquireN(t, 1)
	base := heapInuse()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := collect(t, mustStream(t, h, ctx, tinyVideo(leases[0].token, 1, 20)), nil)
	close(stop)
	<-sampled
	if status.Code(r.err) != codes.Internal || r.trailer != nil {
		t.Errorf("stream ended %v, trailer %v; want Internal", r.err, r.trailer)
	}
	t.Logf("heap peak %d MiB over a baseline of %d MiB", (peak.Load()-min(peak.Load(), base))/mib, base/mib)
	if p := peak.Load(); p > base+64*mib {
		t.Errorf("heap peaked at %d MiB (baseline %d MiB) while the encoder wrote 96 MiB of boxes without a moov", p/mib, base/mib)
	}
	h.assertQuiescent(t, leases)
}
