//go:build unix

package encode_test

// Measurements behind the defaults in encode.go (results: docs/PERFORMANCE.md,
// "How the defaults were chosen").
//
//	go test -run '^$' -bench Presets -benchtime 1x ./internal/encode
//	WHIRL_MEASURE=1 go test -run TestMeasure -v -timeout 60m ./internal/encode
//
// Both encode the same 300 synth frames (720×720, 30 fps) and compare with
// plain libx264 medium CRF 23 (x264's own GOP and scene cuts) on the same
// frames. The machine is shared and noisy: compare only figures from the
// same run; CPU time of the ffmpeg child is steadier than wall time.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/encode/synth"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/i420"
)

const (
	mW, mH, mFPS, mFrames = 720, 720, 30, 300
	budget                = 1.05 // bytes allowed relative to medium CRF 23
)

// clip is a pre-rendered sequence of frames, also saved raw for quality
// comparisons.
type clip struct {
	w, h, fps, n int
	data         []byte // n I420 frames
	rawPath      string
}

func newClip(tb testing.TB, w, h, fps, n int) clip {
	tb.Helper()
	fs := i420.Size(w, h)
	c := clip{w: w, h: h, fps: fps, n: n, data: make([]byte, n*fs)}
	src := synth.New(w, h, n, 1)
	for i := range n {
		src.Next(c.data[i*fs : (i+1)*fs])
	}
	c.rawPath = filepath.Join(tb.TempDir(), "clip.yuv")
	if err := os.WriteFile(c.rawPath, c.data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return c
}

func (c clip) frame(i int) []byte {
	fs := i420.Size(c.w, c.h)
	return c.data[i*fs : (i+1)*fs]
}

// stats is one encode's outcome.
type stats struct {
	data         []byte
	wall, cpu    time.Duration // cpu: the ffmpeg child's user+system time
	init, first  time.Duration // from Start to the init / first media segment
	fragments    int
	framesPerSeg []int
}

func childCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run encodes c with o, feeding a frame every pace (0: as fast as ffmpeg
// takes them).
func run(tb testing.TB, c clip, o encode.Options, pace time.Duration) stats {
	tb.Helper()
	var s stats
	var mu sync.Mutex
	cpu0 := childCPU()
	t0 := time.Now()
	e, err := encode.Start(context.Background(), o, func(seg fmp4.Segment) error {
		mu.Lock()
		defer mu.Unlock()
		if seg.Init {
			s.init = time.Since(t0)
		} else {
			if s.fragments == 0 {
				s.first = time.Since(t0)
			}
			s.fragments++
			s.framesPerSeg = append(s.framesPerSeg, seg.Frames)
		}
		s.data = append(s.data, seg.Data...)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range c.n {
		if pace > 0 {
			time.Sleep(time.Until(t0.Add(time.Duration(i) * pace)))
		}
		if err := e.WriteFrame(c.frame(i)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		tb.Fatal(err)
	}
	s.wall = time.Since(t0)
	s.cpu = childCPU() - cpu0
	return s
}

// reference encodes c the way the matplotlib baseline did (libx264 medium
// CRF 23, x264's default GOP and scene cuts), into a fragmented MP4.
func reference(tb testing.TB, c clip) []byte {
	tb.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", fmt.Sprintf("%dx%d", c.w, c.h),
		"-framerate", strconv.Itoa(c.fps), "-i", c.rawPath,
		"-c:v", "libx264", "-preset", "medium", "-crf", "23", "-pix_fmt", "yuv420p",
		"-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
		"-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("reference encode: %v: %s", err, stderr.String())
	}
	return out.Bytes()
}

// quality returns SSIM (in dB, as ffmpeg prints it) and average PSNR of an
// encode against the clip's frames.
func quality(tb testing.TB, c clip, mp4 []byte) (ssimDB, psnr float64) {
	tb.Helper()
	f := filepath.Join(tb.TempDir(), "q.mp4")
	if err := os.WriteFile(f, mp4, 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", f,
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", fmt.Sprintf("%dx%d", c.w, c.h),
		"-framerate", strconv.Itoa(c.fps), "-i", c.rawPath,
		"-lavfi", "[0:v]split[a0][a1];[1:v]split[b0][b1];[a0][b0]ssim;[a1][b1]psnr", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("quality: %v: %s", err, out)
	}
	if m := regexp.MustCompile(`All:[0-9.]+ \(([0-9.]+|inf)\)`).FindSubmatch(out); m != nil {
		ssimDB, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := regexp.MustCompile(`average:([0-9.]+|inf)`).FindSubmatch(out); m != nil {
		psnr, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return ssimDB, psnr
}

func opts(preset string, crf int) encode.Options {
	return encode.Options{Width: mW, Height: mH, FPS: mFPS, Frames: mFrames, Preset: preset, CRF: crf}
}

func measuredPresets() []string {
	return []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium"}
}

// BenchmarkPresets encodes the clip with each preset at the CRFs in
// WHIRL_BENCH_CRFS (default "23") and reports frames/s, child CPU per frame,
// bytes, bytes relative to medium CRF 23 and quality.
func BenchmarkPresets(b *testing.B) {
	c := newClip(b, mW, mH, mFPS, mFrames)
	ref := reference(b, c)
	crfs := []int{23}
	if s := os.Getenv("WHIRL_BENCH_CRFS"); s != "" {
		crfs = nil
		for f := range strings.FieldsSeq(strings.ReplaceAll(s, ",", " ")) {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			crfs = append(crfs, n)
		}
	}
	for _, p := range measuredPresets() {
		for _, crf := range crfs {
			b.Run(fmt.Sprintf("%s/crf%d", p, crf), func(b *testing.B) {
				var last stats
				var wall, cpu time.Duration
				for b.Loop() {
					last = run(b, c, opts(p, crf), 0)
					wall += last.wall
					cpu += last.cpu
				}
				ssim, psnr := quality(b, c, last.data)
				n := float64(b.N * c.n)
				b.ReportMetric(n/wall.Seconds(), "fps")
				b.ReportMetric(float64(cpu.Milliseconds())/n, "cpu-ms/frame")
				b.ReportMetric(float64(len(last.data)), "bytes")
				b.ReportMetric(float64(len(last.data))/float64(len(ref)), "x_ref")
				b.ReportMetric(ssim, "ssim-dB")
				b.ReportMetric(psnr, "psnr-dB")
				b.ReportMetric(float64(last.first.Milliseconds()), "first-ms")
			})
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// TestMeasure prints the preset, latency and threads tables of
// docs/PERFORMANCE.md. It takes ~15 minutes;
// WHIRL_MEASURE=presets, =latency or =threads (or a list) runs only those.
func TestMeasure(t *testing.T) {
	if os.Getenv("WHIRL_MEASURE") == "" {
		t.Skip("set WHIRL_MEASURE=1 to measure encoder settings (slow)")
	}
	c := newClip(t, mW, mH, mFPS, mFrames)
	ref := reference(t, c)
	refSSIM, refPSNR := quality(t, c, ref)
	reps := 3
	if s := os.Getenv("WHIRL_MEASURE_REPS"); s != "" {
		reps, _ = strconv.Atoi(s)
	}
	part := func(name string) bool {
		m := os.Getenv("WHIRL_MEASURE")
		return m == "1" || m == "all" || strings.Contains(m, name)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "reference: libx264 medium CRF 23, x264 default GOP: %d bytes, SSIM %.2f dB, PSNR %.2f dB; budget %.0f bytes\n\n",
		len(ref), refSSIM, refPSNR, budget*float64(len(ref)))

	// A. presets: at CRF 23, and at the lowest CRF that fits the budget
	fmt.Fprintf(&out, "| preset | CRF | bytes | × ref | fps (median of %d) | child CPU ms/frame | SSIM dB | PSNR dB |\n|---|---|---|---|---|---|---|---|\n", reps)
	row := func(p string, crf int, note string) {
		var walls, cpus []time.Duration
		var last stats
		for range reps {
			last = run(t, c, opts(p, crf), 0)
			walls = append(walls, last.wall)
			cpus = append(cpus, last.cpu)
		}
		ssim, psnr := quality(t, c, last.data)
		fmt.Fprintf(&out, "| %s | %d%s | %d | %.3f | %.0f | %.2f | %.2f | %.2f |\n", p, crf, note, len(last.data),
			float64(len(last.data))/float64(len(ref)), float64(c.n)/median(walls).Seconds(),
			float64(median(cpus).Microseconds())/1000/float64(c.n), ssim, psnr)
	}
	size := map[string]int{}
	bytesAt := func(p string, crf int) int {
		k := fmt.Sprint(p, crf)
		if _, ok := size[k]; !ok {
			size[k] = len(run(t, c, opts(p, crf), 0).data)
		}
		return size[k]
	}
	for _, p := range measuredPresets() {
		if !part("presets") {
			break
		}
		row(p, 23, "")
		lo, hi := 1, 51 // lowest CRF within budget, by bisection (bytes fall with CRF)
		for lo < hi {
			mid := (lo + hi) / 2
			if float64(bytesAt(p, mid)) <= budget*float64(len(ref)) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		if lo != 23 {
			row(p, lo, " (budget)")
		}
	}
	t.Log("\n" + out.String())
	out.Reset()

	// B. time to the first media segment, defaults, by fragment duration
	// and input pace (0: frames ready in memory, as fast as ffmpeg takes them)
	fmt.Fprintf(&out, "| fragment | input pace | init ms | first fragment ms (median, min–max of %d) | fragments | bytes | × ref |\n|---|---|---|---|---|---|---|\n", reps)
	for _, fd := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Hour} {
		if !part("latency") {
			break
		}
		for _, pace := range []time.Duration{0, 10 * time.Millisecond, time.Second / 30} {
			o := opts("", 0)
			o.FragmentDuration = fd
			var inits, firsts []time.Duration
			var last stats
			for range reps {
				last = run(t, c, o, pace)
				inits = append(inits, last.init)
				firsts = append(firsts, last.first)
			}
			name := fd.String()
			if fd == time.Hour {
				name = "GOP (keyframes only)"
			}
			p := "ready"
			if pace > 0 {
				p = fmt.Sprintf("%.0f fps", float64(time.Second)/float64(pace))
			}
			fmt.Fprintf(&out, "| %s | %s | %s | %s (%s–%s) | %d | %d | %.3f |\n", name, p, ms(median(inits)), ms(median(firsts)),
				ms(slices.Min(firsts)), ms(slices.Max(firsts)), last.fragments, len(last.data), float64(len(last.data))/float64(len(ref)))
		}
	}
	t.Log("\n" + out.String())
	out.Reset()

	// C. threads, alone and five at once (the same request): speed and bytes
	fmt.Fprintf(&out, "| threads | concurrent | wall fps each (median) | child CPU ms/frame | bytes | identical to alone |\n|---|---|---|---|---|---|\n")
	for _, th := range []int{1, 2, 3, 4} {
		if !part("threads") {
			break
		}
		o := opts("", 0)
		o.Threads = th
		alone := run(t, c, o, 0)
		for _, conc := range []int{1, 5} {
			all := make([]stats, conc)
			var wg sync.WaitGroup
			for i := range all {
				wg.Go(func() { all[i] = run(t, c, o, 0) })
			}
			wg.Wait()
			var walls []time.Duration
			same := true
			for _, s := range all {
				walls = append(walls, s.wall)
				same = same && bytes.Equal(s.data, alone.data)
			}
			fmt.Fprintf(&out, "| %d | %d | %.0f | %.2f | %d | %v |\n", th, conc, float64(c.n)/median(walls).Seconds(),
				float64(alone.cpu.Microseconds())/1000/float64(c.n), len(alone.data), same)
		}
	}
	t.Log("\n" + out.String())
}
