package main_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// ffmpegLog wraps the real ffmpeg in a script that appends each command
// line to a log before exec'ing it, so a test counts every ffmpeg the server
// started, however short-lived.
type ffmpegLog struct{ script, log string }

func newFFmpegLog(t *testing.T) ffmpegLog {
	t.Helper()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l := ffmpegLog{script: filepath.Join(dir, "ffmpeg"), log: filepath.Join(dir, "launches")}
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %q\nexec %q \"$@\"\n", l.log, real)
	if err := os.WriteFile(l.script, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return l
}

// encodes counts the encoders started for videos of the given size (the
// warm spare is always 720×720, so other sizes count renders only).
func (l ffmpegLog) encodes(t *testing.T, size string) int {
	t.Helper()
	b, err := os.ReadFile(l.log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Count(string(b), "-video_size "+size+" ")
}

// rendered is one RenderAnimation stream as the client saw it.
type rendered struct {
	header  *whirlv1.RenderHeader
	trailer *whirlv1.RenderTrailer
	data    []byte
	// start is the offset of the first chunk.
	start int64
}

func (r rendered) sum() string { s := sha256.Sum256(r.data); return hex.EncodeToString(s[:]) }

func acquire(t *testing.T, api whirlv1.AnimationServiceClient) string {
	t.Helper()
	l, err := api.AcquireLease(t.Context(), &whirlv1.AcquireLeaseRequest{Holder: "cache-e2e", Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	return l.GetLeaseId()
}

// renderStream runs one RenderAnimation to its end; onEvent (may be nil)
// sees every event.
func renderStream(ctx context.Context, api whirlv1.AnimationServiceClient, req *whirlv1.RenderAnimationRequest, onEvent func(*whirlv1.RenderAnimationResponse)) (rendered, error) {
	var r rendered
	stream, err := api.RenderAnimation(ctx, req)
	if err != nil {
		return r, err
	}
	first := true
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if r.trailer == nil {
				return r, errors.New("stream ended without a trailer")
			}
			return r, nil
		}
		if err != nil {
			return r, err
		}
		if onEvent != nil {
			onEvent(ev)
		}
		switch {
		case ev.GetHeader() != nil:
			r.header = ev.GetHeader()
		case ev.GetChunk() != nil:
			c := ev.GetChunk()
			if first {
				r.start, first = c.GetOffset(), false
			}
			if c.GetOffset() != r.start+int64(len(r.data)) {
				return r, fmt.Errorf("chunk at %d after %d bytes from %d", c.GetOffset(), len(r.data), r.start)
			}
			r.data = append(r.data, c.GetData()...)
		case ev.GetTrailer() != nil:
			r.trailer = ev.GetTrailer()
		}
	}
}

func videoRequest(lease string, seed uint64, side, frames int32) *whirlv1.RenderAnimationRequest {
	return &whirlv1.RenderAnimationRequest{
		LeaseId: lease,
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: seed}},
		Video:   &whirlv1.VideoOptions{Width: side, Height: side, Fps: 30, Frames: frames},
	}
}

// checkWhole checks a complete stream: the trailer describes the bytes and
// ffprobe accepts them as the video asked for.
func checkWhole(t *testing.T, r rendered, source whirlv1.VideoSource, side, frames int) {
	t.Helper()
	tr := r.trailer
	if tr.GetTotalBytes() != int64(len(r.data)) || tr.GetSha256() != r.sum() {
		t.Fatalf("trailer %d bytes %s, stream %d bytes %s", tr.GetTotalBytes(), tr.GetSha256(), len(r.data), r.sum())
	}
	if tr.GetSource() != source || tr.GetVideoId() != r.header.GetVideoId() || len(tr.GetVideoId()) != 64 {
		t.Fatalf("trailer source %v video_id %q, header video_id %q; want source %v", tr.GetSource(), tr.GetVideoId(), r.header.GetVideoId(), source)
	}
	mp4check.Probe(t, r.data, mp4check.Expect{Width: side, Height: side, FPS: 30, Frames: frames})
}

// metric reads one counter or gauge from a server's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCacheRepeatAndRestart: the same request twice gives the same bytes,
// the second time from the cache without starting any ffmpeg; a server
// restarted on the same cache directory serves it from the cache too.
func TestCacheRepeatAndRestart(t *testing.T) {
	ff := newFFmpegLog(t)
	dir := t.TempDir()
	metricsAddr := testserver.FreeAddr(t)
	args := []string{"--cache-dir", dir, "--ffmpeg", ff.script, "--metrics-addr", metricsAddr}
	p := startServer(t, args...)
	api := whirlv1.NewAnimationServiceClient(dial(t, p.addr))
	lease := acquire(t, api)

	first, err := renderStream(t.Context(), api, videoRequest(lease, 42, 160, 30), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, first, whirlv1.VideoSource_VIDEO_SOURCE_RENDERED, 160, 30)
	perRender := ff.encodes(t, "160x160")
	if perRender < 1 {
		t.Fatal("no encoder logged for the first render")
	}
	second, err := renderStream(t.Context(), api, videoRequest(lease, 42, 160, 30), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, second, whirlv1.VideoSource_VIDEO_SOURCE_CACHED, 160, 30)
	if !bytes.Equal(first.data, second.data) || first.header.GetVideoId() != second.header.GetVideoId() {
		t.Fatal("the cached copy differs from the render")
	}
	if n := ff.encodes(t, "160x160"); n != perRender {
		t.Fatalf("%d encoders after the cache hit, want still %d", n, perRender)
	}
	if hits, misses := metric(t, metricsAddr, "whirl_cache_hits_total"), metric(t, metricsAddr, "whirl_cache_misses_total"); hits != 1 || misses != 1 {
		t.Fatalf("hits %v misses %v, want 1 and 1", hits, misses)
	}

	stopServer(t, p)
	p = startServer(t, args...)
	api = whirlv1.NewAnimationServiceClient(dial(t, p.addr))
	third, err := renderStream(t.Context(), api, videoRequest(acquire(t, api), 42, 160, 30), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkWhole(t, third, whirlv1.VideoSource_VIDEO_SOURCE_CACHED, 160, 30)
	if !bytes.Equal(first.data, third.data) || ff.encodes(t, "160x160") != perRender {
		t.Fatal("after a restart: not the same bytes from the cache")
	}
	if !strings.Contains(p.logs.String(), `"video_id":"`+first.header.GetVideoId()+`"`) {
		t.Fatal("the call's log line lacks its video_id")
	}
}

// stopServer ends p with SIGTERM and waits for a clean exit.
func stopServer(t *testing.T, p *process) {
	t.Helper()
	if err := p.srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("server exit: %v", err)
	}
	p.done <- nil // for the cleanup
}

// TestFiveIdenticalRequestsShareOneRender: five leases ask for the same
// video at once; one ffmpeg runs, all five get the same bytes, four of them
// marked SHARED. A request arriving part-way through joins too and gets
// the whole file.
func TestFiveIdenticalRequestsShareOneRender(t *testing.T) {
	ff := newFFmpegLog(t)
	metricsAddr := testserver.FreeAddr(t)
	p := startServer(t, "--cache-dir", t.TempDir(), "--ffmpeg", ff.script, "--capacity", "6", "--acquire-rate", "0", "--metrics-addr", metricsAddr)
	api := whirlv1.NewAnimationServiceClient(dial(t, p.addr))
	// Long enough that the render still runs well after the progress event
	// (sent every 0.5 s) that shows it a quarter done, even on an idle
	// machine (where it draws 600 frames in about a second), so the late
	// joiner finds it running rather than cached.
	const side, frames = 480, 900
	leases := make([]string, 6)
	for i := range leases {
		leases[i] = acquire(t, api)
	}
	var (
		wg      sync.WaitGroup
		results = make([]rendered, 5)
		errs    = make([]error, 5)
		quarter = make(chan struct{})
		once    sync.Once
		ended   = make(chan struct{})
	)
	for i := range 5 {
		wg.Go(func() {
			results[i], errs[i] = renderStream(t.Context(), api, videoRequest(leases[i], 7, side, frames), func(ev *whirlv1.RenderAnimationResponse) {
				if i == 0 && ev.GetProgress().GetFramesDone() >= frames/4 {
					once.Do(func() { close(quarter) })
				}
			})
			if i == 0 {
				close(ended)
			}
		})
	}
	// The sixth joins once the render is a quarter done.
	var late rendered
	var lateErr error
	wg.Go(func() {
		select {
		case <-quarter:
		case <-ended:
			lateErr = errors.New("no progress event showed the render a quarter done before it ended")
			return
		}
		late, lateErr = renderStream(t.Context(), api, videoRequest(leases[5], 7, side, frames), nil)
	})
	wg.Wait()
	sources := map[whirlv1.VideoSource]int{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("stream %d: %v", i, errs[i])
		}
		if !bytes.Equal(r.data, results[0].data) {
			t.Fatalf("stream %d got different bytes", i)
		}
		sources[r.trailer.GetSource()]++
	}
	checkWhole(t, results[0], results[0].trailer.GetSource(), side, frames)
	if sources[whirlv1.VideoSource_VIDEO_SOURCE_RENDERED] != 1 || sources[whirlv1.VideoSource_VIDEO_SOURCE_SHARED] != 4 {
		t.Fatalf("sources %v, want one RENDERED and four SHARED", sources)
	}
	if lateErr != nil || !bytes.Equal(late.data, results[0].data) || late.trailer.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_SHARED {
		t.Fatalf("late joiner: err %v, source %v, same bytes %v", lateErr, late.trailer.GetSource(), bytes.Equal(late.data, results[0].data))
	}
	// However many encoders one render runs, six identical requests ran
	// exactly as many as one other video of the same size and length.
	size := fmt.Sprintf("%dx%d", side, side)
	shared := ff.encodes(t, size)
	if _, err := renderStream(t.Context(), api, videoRequest(leases[0], 8, side, frames), nil); err != nil {
		t.Fatal(err)
	}
	if solo := ff.encodes(t, size) - shared; shared != solo || solo < 1 {
		t.Fatalf("%d encoders ran for six identical requests, %d for one other video", shared, solo)
	}
	if n := metric(t, metricsAddr, "whirl_renders_shared_total"); n != 5 {
		t.Fatalf("whirl_renders_shared_total %v, want 5", n)
	}
}

// TestResumeOverTheWire: a stream resumed at an offset carries the header,
// then chunks from exactly that offset, then the whole file's trailer; a
// changed video id is VIDEO_CHANGED, an offset past the end OUT_OF_RANGE.
func TestResumeOverTheWire(t *testing.T) {
	metricsAddr := testserver.FreeAddr(t)
	p := startServer(t, "--cache-dir", t.TempDir(), "--metrics-addr", metricsAddr)
	api := whirlv1.NewAnimationServiceClient(dial(t, p.addr))
	lease := acquire(t, api)
	whole, err := renderStream(t.Context(), api, videoRequest(lease, 9, 96, 20), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, n := whole.header.GetVideoId(), int64(len(whole.data))
	req := videoRequest(lease, 9, 96, 20)
	req.Resume = &whirlv1.Resume{VideoId: id, Offset: n / 3}
	part, err := renderStream(t.Context(), api, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if part.start != n/3 || !bytes.Equal(part.data, whole.data[n/3:]) || part.trailer.GetSha256() != whole.sum() || part.trailer.GetTotalBytes() != n {
		t.Fatalf("resumed at %d: first chunk at %d, %d bytes, trailer %d bytes", n/3, part.start, len(part.data), part.trailer.GetTotalBytes())
	}
	for _, tc := range []struct {
		resume *whirlv1.Resume
		code   codes.Code
	}{
		{&whirlv1.Resume{VideoId: strings.Repeat("0", 64), Offset: 1}, codes.FailedPrecondition},
		{&whirlv1.Resume{VideoId: id, Offset: n + 1}, codes.OutOfRange},
		{&whirlv1.Resume{VideoId: "not-hex", Offset: 0}, codes.InvalidArgument},
		{&whirlv1.Resume{VideoId: id, Offset: -1}, codes.InvalidArgument},
	} {
		req.Resume = tc.resume
		_, err := renderStream(t.Context(), api, req, nil)
		if status.Code(err) != tc.code {
			t.Fatalf("resume %v: %v, want %v", tc.resume, err, tc.code)
		}
		if tc.code == codes.FailedPrecondition && !strings.Contains(fmt.Sprint(status.Convert(err).Details()), "VIDEO_CHANGED") {
			t.Fatalf("resume with another video id: details %v lack VIDEO_CHANGED", status.Convert(err).Details())
		}
	}
	// Counted: the resume that went through and the one past the end, both
	// accepted; not the refused ones.
	if n := metric(t, metricsAddr, "whirl_streams_resumed_total"); n != 2 {
		t.Fatalf("whirl_streams_resumed_total %v, want 2", n)
	}
}

// TestCacheFaults: whatever goes wrong with the cache directory, every
// render succeeds with the right bytes, nothing corrupt is served, and a
// cache that cannot write turns itself off with a warning and the
// whirl_cache_write_failures_total metric.
func TestCacheFaults(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// RLIMIT_FSIZE makes writes past 32 KiB fail as a full disk does.
	fsizeCap := filepath.Join(t.TempDir(), "whirl-server-fsize")
	if err := os.WriteFile(fsizeCap, []byte("#!/bin/sh\nulimit -f 64\nexec "+bins.server+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// dir is the cache directory; setup runs after the server started.
		dir, bin string
		setup    func(t *testing.T, dir string)
		// between runs after the first render.
		between       func(t *testing.T, dir, id string)
		second        whirlv1.VideoSource
		writeFailures float64
		log           string
	}{
		{name: "directory cannot be created", dir: filepath.Join(notADir, "cache"),
			second: whirlv1.VideoSource_VIDEO_SOURCE_RENDERED, writeFailures: 1, log: "video cache turned off"},
		{name: "directory removed while serving", setup: func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, second: whirlv1.VideoSource_VIDEO_SOURCE_RENDERED, writeFailures: 1, log: "video cache turned off"},
		{name: "disk full (file size limit)", bin: fsizeCap,
			second: whirlv1.VideoSource_VIDEO_SOURCE_RENDERED, writeFailures: 1, log: "video cache turned off"},
		{name: "entry altered on disk", between: func(t *testing.T, dir, id string) {
			p := filepath.Join(dir, id+".mp4")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x55
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, second: whirlv1.VideoSource_VIDEO_SOURCE_RENDERED, log: "cache entry failed verification"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := cmp.Or(tc.dir, filepath.Join(t.TempDir(), "cache"))
			metricsAddr := testserver.FreeAddr(t)
			p := startServerWith(t, cmp.Or(tc.bin, bins.server), "--cache-dir", dir, "--metrics-addr", metricsAddr)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			api := whirlv1.NewAnimationServiceClient(dial(t, p.addr))
			lease := acquire(t, api)
			first, err := renderStream(t.Context(), api, videoRequest(lease, 77, 160, 60), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkWhole(t, first, whirlv1.VideoSource_VIDEO_SOURCE_RENDERED, 160, 60)
			if tc.between != nil {
				tc.between(t, dir, first.header.GetVideoId())
			}
			second, err := renderStream(t.Context(), api, videoRequest(lease, 77, 160, 60), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkWhole(t, second, tc.second, 160, 60)
			if !bytes.Equal(first.data, second.data) {
				t.Fatal("the second render differs from the first")
			}
			if n := metric(t, metricsAddr, "whirl_cache_write_failures_total"); n != tc.writeFailures {
				t.Fatalf("whirl_cache_write_failures_total %v, want %v", n, tc.writeFailures)
			}
			if !strings.Contains(p.logs.String(), tc.log) {
				t.Fatalf("no %q in the server's log", tc.log)
			}
		})
	}
}
