package encode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/encode/synth"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
	"github.com/whirl-dev/whirl/internal/i420"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// frames returns n deterministic synthetic frames of w×h.
func frames(tb testing.TB, w, h, n int) [][]byte {
	tb.Helper()
	src := synth.New(w, h, n, 1)
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, i420.Size(w, h))
		if !src.Next(out[i]) {
			tb.Fatalf("synth ran out at frame %d", i)
		}
	}
	return out
}

// result is what one encode produced.
type result struct {
	segs []fmp4.Segment
	data []byte
}

// encodeAll encodes fs with o and returns the segments.
func encodeAll(ctx context.Context, o encode.Options, fs [][]byte) (result, error) {
	var r result
	var mu sync.Mutex
	e, err := encode.Start(ctx, o, func(s fmp4.Segment) error {
		mu.Lock()
		defer mu.Unlock()
		r.segs = append(r.segs, s)
		r.data = append(r.data, s.Data...)
		return nil
	})
	if err != nil {
		return r, err
	}
	for _, f := range fs {
		if err := e.WriteFrame(f); err != nil {
			_ = e.Close()
			return r, err
		}
	}
	err = e.Close()
	mu.Lock()
	defer mu.Unlock()
	return r, err
}

// boxTypes lists the top-level box types of b.
func boxTypes(t testing.TB, b []byte) []string {
	t.Helper()
	boxes, err := fmp4.Boxes(b)
	if err != nil {
		t.Fatalf("Boxes: %v", err)
	}
	var ts []string
	for _, x := range boxes {
		ts = append(ts, x.Type)
	}
	return ts
}

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       encode.Options
		frames  int
		profile string
		codecs  string // expected codecs string, if pinned
	}{
		{name: "defaults 720", o: encode.Options{Width: 720, Height: 720, FPS: 30}, frames: 14, profile: "High", codecs: "avc1.64001f"},
		{name: "small 25fps", o: encode.Options{Width: 64, Height: 48, FPS: 25}, frames: 10, profile: "High"},
		{name: "wide odd gop", o: encode.Options{Width: 320, Height: 180, FPS: 30, GOP: 7}, frames: 40, profile: "High"},
		{name: "ultrafast baseline", o: encode.Options{Width: 160, Height: 160, FPS: 24, Preset: "ultrafast", CRF: 30}, frames: 30, profile: "Constrained Baseline"},
		{name: "medium one thread", o: encode.Options{Width: 128, Height: 96, FPS: 60, Preset: "medium", Threads: 1}, frames: 61, profile: "High"},
		{name: "keyframe fragments only", o: encode.Options{Width: 96, Height: 96, FPS: 30, GOP: 15, FragmentDuration: time.Hour}, frames: 45, profile: "High"},
		{name: "single frame", o: encode.Options{Width: 32, Height: 32, FPS: 30, Frames: 1}, frames: 1, profile: "High"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			r, err := encodeAll(context.Background(), o, frames(t, o.Width, o.Height, tc.frames))
			if err != nil {
				t.Fatal(err)
			}
			info := mp4check.Probe(t, r.data, mp4check.Expect{
				Width: o.Width, Height: o.Height, FPS: o.FPS, Frames: tc.frames, Profile: tc.profile,
			})
			if tc.codecs != "" && info.Codecs != tc.codecs {
				t.Errorf("codecs %q, want %q", info.Codecs, tc.codecs)
			}

			// segments: init first (ftyp+moov), then moof+mdat each
			if len(r.segs) < 2 || !r.segs[0].Init {
				t.Fatalf("got %d segments, first init=%v", len(r.segs), len(r.segs) > 0 && r.segs[0].Init)
			}
			if got := boxTypes(t, r.segs[0].Data); fmt.Sprint(got) != "[ftyp moov]" {
				t.Errorf("init segment boxes %v", got)
			}
			mime, err := fmp4.MIMEType(r.segs[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			if want := `video/mp4; codecs="` + info.Codecs + `"`; mime != want {
				t.Errorf("MIMEType %q, want %q", mime, want)
			}
			gop := o.GOP
			if gop == 0 {
				gop = encode.DefaultGOPSeconds * o.FPS
			}
			fd := o.FragmentDuration
			if fd == 0 {
				fd = encode.DefaultFragmentDuration
			}
			// a fragment ends at a keyframe or once it spans fd
			maxFrames := min(gop, int((fd*time.Duration(o.FPS)+time.Second-1)/time.Second))
			total := 0
			for i, s := range r.segs[1:] {
				if s.Init {
					t.Errorf("segment %d is an init segment", i+1)
				}
				if got := boxTypes(t, s.Data); fmt.Sprint(got) != "[moof mdat]" {
					t.Errorf("segment %d boxes %v", i+1, got)
				}
				if s.Frames < 1 || s.Frames > maxFrames {
					t.Errorf("segment %d has %d frames, want 1..%d", i+1, s.Frames, maxFrames)
				}
				total += s.Frames
			}
			if total != tc.frames {
				t.Errorf("segments hold %d frames, want %d", total, tc.frames)
			}
			if want := (tc.frames + maxFrames - 1) / maxFrames; info.Fragments < want {
				t.Errorf("%d fragments, want at least %d", info.Fragments, want)
			}
		})
	}
}

// TestNoVersionStrings: bit-exact output carries no encoder versions, so the
// bytes do not change with an ffmpeg or x264 upgrade that encodes the same.
func TestNoVersionStrings(t *testing.T) {
	r, err := encodeAll(context.Background(), encode.Options{Width: 64, Height: 64, FPS: 30}, frames(t, 64, 64, 5))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?i)x264 - core|core [0-9]+|Lav[fc][0-9]|ffmpeg|libavformat|videolan|Copyleft|[0-9]+\.[0-9]+\.[0-9]+`)
	if m := re.Find(r.data); m != nil {
		t.Errorf("output contains %q", m)
	}
}

func TestDeterministic(t *testing.T) {
	o := encode.Options{Width: 320, Height: 240, FPS: 30}
	fs := frames(t, o.Width, o.Height, 60)
	alone, err := encodeAll(context.Background(), o, fs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := encodeAll(context.Background(), o, fs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(alone.data, again.data) {
		t.Fatalf("two encodes differ: %d and %d bytes", len(alone.data), len(again.data))
	}
	// the same request beside four others, all at once
	var wg sync.WaitGroup
	results := make([]result, 5)
	errs := make([]error, 5)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = encodeAll(context.Background(), o, fs) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("concurrent encode %d: %v", i, errs[i])
		}
		if !bytes.Equal(alone.data, results[i].data) {
			t.Errorf("concurrent encode %d differs from the one run alone (%d vs %d bytes)", i, len(results[i].data), len(alone.data))
		}
	}
	// threads 1 and 2 happen to give the same bytes (3 does not)
	o.Threads = 1
	one, err := encodeAll(context.Background(), o, fs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(alone.data, one.data) {
		t.Logf("note: threads 1 and %d differ", encode.DefaultThreads)
	}
}

// gone reports whether pid has left the process table (a zombie has not).
func gone(pid int) bool {
	_, err := procfs.NewProc(pid)
	return errors.Is(err, fs.ErrNotExist)
}

// waitFor waits for an event the code under test has no channel for:
// until pending returns "" (while it does not, it says what is missing).
// within is a deadline for a hang, not a speed requirement.
func waitFor(t *testing.T, within time.Duration, what string, pending func() string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(within)
	for {
		p := pending()
		if p == "" {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("still waiting after %v for %s: %s", within, what, p)
		}
	}
}

// writerBlocked is "" once a goroutine is parked inside WriteFrame waiting
// for ffmpeg to drain its stdin pipe.
func writerBlocked() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(" [IO wait")) && bytes.Contains(g, []byte("(*Encoder).WriteFrame")) {
			return ""
		}
	}
	return "no goroutine is parked in WriteFrame's pipe write"
}

// noLeaks checks that only goroutines in ignore remain (goleak retries for
// a while before it reports any).
func noLeaks(t *testing.T, ignore goleak.Option) {
	t.Helper()
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("goroutines left: %v", err)
	}
}

func TestCancel(t *testing.T) {
	fs := frames(t, 320, 240, 10)
	for _, tc := range []struct {
		name string
		// blockSink makes the sink hold the first media segment until ctx
		// is done, so ffmpeg stalls and WriteFrame blocks on the pipe.
		blockSink bool
	}{{"while writing", false}, {"while blocked on backpressure", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan struct{}, 1)
			e, err := encode.Start(ctx, encode.Options{Width: 320, Height: 240, FPS: 30}, func(s fmp4.Segment) error {
				if s.Init {
					return nil
				}
				select {
				case got <- struct{}{}:
				default:
				}
				if tc.blockSink {
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			pid := e.PID()
			writeErr := make(chan error, 1)
			var written int
			go func() {
				for i := 0; ; i++ {
					if err := e.WriteFrame(fs[i%len(fs)]); err != nil {
						writeErr <- err
						return
					}
					written++
				}
			}()
			<-got // mid-encode: media segments are flowing
			if tc.blockSink {
				// backpressure: the writer stalls on the pipe, it does
				// not buffer frames or fail
				waitFor(t, 10*time.Second, "WriteFrame to block on ffmpeg's stdin", writerBlocked)
				select {
				case err := <-writeErr:
					t.Fatalf("WriteFrame returned %v while the sink was blocked", err)
				default:
				}
			}
			cancel()
			select {
			case err := <-writeErr:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("WriteFrame after cancel: %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("WriteFrame still blocked 10 s after cancel")
			}
			// without calling Close: every goroutine of the encoder is
			// gone, the one that reaps ffmpeg too, so ffmpeg is gone
			noLeaks(t, ignore)
			if !gone(pid) {
				t.Errorf("ffmpeg %d still in the process table after the encoder stopped", pid)
			}
			if err := e.Close(); !errors.Is(err, context.Canceled) {
				t.Errorf("Close after cancel: %v, want context.Canceled", err)
			}
			t.Logf("%d frames written before cancel", written)
		})
	}
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := encode.Start(ctx, encode.Options{Width: 64, Height: 64, FPS: 30}, func(fmp4.Segment) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context: %v", err)
	}
}

func TestKilledMidStream(t *testing.T) {
	fs := frames(t, 320, 240, 10)
	e, err := encode.Start(context.Background(), encode.Options{Width: 320, Height: 240, FPS: 30}, func(fmp4.Segment) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if err := e.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(e.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		werr = e.WriteFrame(fs[i%len(fs)])
	}
	if werr == nil {
		t.Fatal("WriteFrame kept succeeding after kill -9")
	}
	if !strings.Contains(werr.Error(), "killed") {
		t.Errorf("WriteFrame error does not say ffmpeg was killed: %v", werr)
	}
	cerr := e.Close()
	if cerr == nil || !strings.Contains(cerr.Error(), "killed") {
		t.Errorf("Close after kill -9: %v", cerr)
	}
	if !gone(e.PID()) { // Close returns after reaping
		t.Errorf("ffmpeg %d still in the process table after Close", e.PID())
	}
	t.Logf("WriteFrame: %v\nClose: %v", werr, cerr)
}

func TestSinkError(t *testing.T) {
	errFull := errors.New("client went away")
	fs := frames(t, 160, 120, 10)
	calls := 0
	e, err := encode.Start(context.Background(), encode.Options{Width: 160, Height: 120, FPS: 30}, func(s fmp4.Segment) error {
		calls++
		if calls == 2 {
			return errFull
		}
		if calls > 2 {
			t.Errorf("sink called again after it failed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ {
		werr = e.WriteFrame(fs[i%len(fs)])
	}
	if !errors.Is(werr, errFull) {
		t.Errorf("WriteFrame: %v, want the sink's error", werr)
	}
	if err := e.Close(); !errors.Is(err, errFull) {
		t.Errorf("Close: %v, want the sink's error", err)
	}
	if !gone(e.PID()) { // Close returns after reaping
		t.Errorf("ffmpeg %d still in the process table after Close", e.PID())
	}
}

// fakeFFmpeg writes an executable shell script standing in for ffmpeg.
func fakeFFmpeg(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadFFmpeg(t *testing.T) {
	fs := frames(t, 64, 64, 3)
	for _, tc := range []struct {
		name   string
		script string
		want   string // in the error
	}{
		{"random bytes", `head -c 100000 /dev/urandom`, "malformed"},
		{"endless random bytes", `exec cat /dev/urandom`, "malformed"},
		{"random bytes then hang", `head -c 5000 /dev/urandom; sleep 60`, "malformed"},
		{"huge box", `printf '\177\377\377\377mdat'; sleep 60`, "malformed"},
		{"largesize garbage", `printf '\000\000\000\001ftyp\377\377\377\377\377\377\377\377'; sleep 60`, "malformed"},
		{"box smaller than its header", `printf '\000\000\000\004ftyp'; sleep 60`, "malformed"},
		{"fragment before init", `printf '\000\000\000\010moof'`, "malformed"},
		{"truncated ftyp", `printf '\000\000\000\100ftypisom'`, "truncated"},
		{"no output", `cat >/dev/null`, "without an init segment"},
		{"exits with an error", `echo "Unknown encoder 'libx264'" >&2; exit 1`, "Unknown encoder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			path := fakeFFmpeg(t, tc.script)
			done := make(chan error, 1)
			var pid int
			go func() {
				e, err := encode.Start(context.Background(), encode.Options{FFmpegPath: path, Width: 64, Height: 64, FPS: 30}, func(fmp4.Segment) error { return nil })
				if err != nil {
					done <- err
					return
				}
				pid = e.PID()
				var werr error
				for _, f := range fs {
					if werr = e.WriteFrame(f); werr != nil {
						break
					}
				}
				cerr := e.Close()
				if werr != nil && cerr != nil && werr.Error() != cerr.Error() {
					t.Logf("WriteFrame: %v", werr)
				}
				done <- cerr
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %v, want one containing %q", err, tc.want)
				}
				t.Logf("%v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("encoder hangs on a bad ffmpeg")
			}
			if pid != 0 && !gone(pid) { // Close returns after reaping
				t.Errorf("ffmpeg %d still in the process table after Close", pid)
			}
			noLeaks(t, ignore)
		})
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	if err := encode.Check(ctx, ""); err != nil {
		t.Fatalf("Check of the installed ffmpeg: %v", err)
	}
	if err := encode.Check(ctx, "/usr/bin/ffmpeg"); err != nil {
		t.Fatalf("Check /usr/bin/ffmpeg: %v", err)
	}

	missing := filepath.Join(t.TempDir(), "no", "ffmpeg")
	err := encode.Check(ctx, missing)
	if !errors.Is(err, encode.ErrFFmpegNotFound) {
		t.Errorf("Check(missing): %v, want ErrFFmpegNotFound", err)
	}
	if want := "ffmpeg not found at " + missing + ": install it with `apt-get install -y ffmpeg`"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Check(missing) = %v, want it to say %q", err, want)
	}
	if err := encode.Check(ctx, "no-such-ffmpeg-binary"); !errors.Is(err, encode.ErrFFmpegNotFound) {
		t.Errorf("Check(not in PATH): %v", err)
	}
	_, err = encode.Start(ctx, encode.Options{FFmpegPath: missing, Width: 64, Height: 64, FPS: 30}, func(fmp4.Segment) error { return nil })
	if !errors.Is(err, encode.ErrFFmpegNotFound) {
		t.Errorf("Start(missing): %v, want ErrFFmpegNotFound", err)
	}

	noX264 := fakeFFmpeg(t, `case "$*" in
*-encoders*) echo " V....D libx265 libx265 H.265 / HEVC"; echo " V....D mpeg4 MPEG-4 part 2";;
*) echo "ffmpeg version 5.1";;
esac`)
	if err := encode.Check(ctx, noX264); !errors.Is(err, encode.ErrNoLibx264) {
		t.Errorf("Check(no libx264): %v, want ErrNoLibx264", err)
	}
	broken := fakeFFmpeg(t, `echo "error while loading shared libraries: libavdevice.so.59" >&2; exit 127`)
	if err := encode.Check(ctx, broken); err == nil || !strings.Contains(err.Error(), "libavdevice") {
		t.Errorf("Check(broken): %v, want it to show the stderr", err)
	}
	notExec := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := encode.Check(ctx, notExec); err == nil {
		t.Error("Check(not executable) passed")
	}
}

func TestOptionsValidation(t *testing.T) {
	sink := func(fmp4.Segment) error { return nil }
	for _, o := range []encode.Options{
		{Width: 63, Height: 64, FPS: 30},
		{Width: 64, Height: 0, FPS: 30},
		{Width: 64, Height: 64},
		{Width: 64, Height: 64, FPS: 30, Preset: "warp"},
		{Width: 64, Height: 64, FPS: 30, CRF: 52},
		{Width: 64, Height: 64, FPS: 30, CRF: -1},
		{Width: 64, Height: 64, FPS: 30, GOP: -1},
		{Width: 64, Height: 64, FPS: 30, Threads: -2},
		{Width: 64, Height: 64, FPS: 30, Frames: -1},
		{Width: 64, Height: 64, FPS: 30, FragmentDuration: time.Microsecond},
	} {
		if e, err := encode.Start(context.Background(), o, sink); err == nil {
			_ = e.Close()
			t.Errorf("Start(%+v) accepted bad options", o)
		}
	}
	if _, err := encode.Start(context.Background(), encode.Options{Width: 64, Height: 64, FPS: 30}, nil); err == nil {
		t.Error("Start accepted a nil sink")
	}
}

func TestFrameCount(t *testing.T) {
	fs := frames(t, 64, 64, 4)
	ctx := context.Background()
	o := encode.Options{Width: 64, Height: 64, FPS: 30, Frames: 3}

	e, err := encode.Start(ctx, o, func(fmp4.Segment) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WriteFrame(fs[0][:100]); err == nil {
		t.Error("WriteFrame accepted a short frame")
	}
	for _, f := range fs[:3] {
		if err := e.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.WriteFrame(fs[3]); err == nil {
		t.Error("WriteFrame accepted a frame past Options.Frames")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := e.WriteFrame(fs[0]); err == nil {
		t.Error("WriteFrame after Close succeeded")
	}

	e, err = encode.Start(ctx, o, func(fmp4.Segment) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WriteFrame(fs[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err == nil || !strings.Contains(err.Error(), "1 of 3") {
		t.Errorf("Close after 1 of 3 frames: %v", err)
	}
}
