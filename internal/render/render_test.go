package render

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/i420"
)

var update = flag.Bool("update", false, "rewrite the golden PNGs under testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func generate(t testing.TB, p curve.Params) curve.Curve {
	t.Helper()
	c, err := curve.Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fixedCurve is a hand-written curve whose wheels all have shape s: the
// classic Farris e^{it} + e^{6it}/2 + i·e^{-14it}/3 (5-fold) with a fourth,
// smaller wheel.
func fixedCurve(s curve.Shape) curve.Curve {
	return curve.Curve{KFold: 5, Congruency: 1, Wheels: []curve.Wheel{
		{Radius: 1, Frequency: 1, Shape: s},
		{Radius: 0.5, Frequency: 6, Shape: s, Aspect: 1.6},
		{Radius: 1.0 / 3, Frequency: -14, Phase: math.Pi / 2, Shape: s},
		{Radius: 0.2, Frequency: -4, Phase: 1, Shape: s, Aspect: 1.3},
	}}
}

type goldenCase struct {
	name  string
	c     curve.Curve
	o     Options
	frame int
}

func goldenCases(t testing.TB) []goldenCase {
	var cases []goldenCase
	base := Options{Width: 320, Height: 320, Frames: 90}
	for _, s := range curve.AllShapes() {
		for _, st := range []Style{Trace, Wheels} {
			o := base
			o.Style = st
			cases = append(cases, goldenCase{fmt.Sprintf("%v_%v", s, st), fixedCurve(s), o, 70})
		}
	}
	mixed := generate(t, curve.Params{Seed: 42})
	for _, st := range []Style{Trace, Wheels} {
		o := base
		o.Style = st
		cases = append(cases, goldenCase{"seed42_" + st.String(), mixed, o, 70})
	}
	seven := generate(t, curve.Params{Seed: 7, KFold: 7, Wheels: 6})
	light := base
	light.Background = color.RGBA{0xf4, 0xf1, 0xea, 0xff}
	light.Pen = color.RGBA{0x1f, 0x4e, 0x8c, 0xff}
	light.LineWidth = 2.5
	cases = append(cases,
		goldenCase{"seed7_finished_wheels", seven, base, -1},
		goldenCase{"seed7_light_wheels", seven, light, 40},
		goldenCase{"seed7_aliased_wheels", seven, Options{Width: 320, Height: 240, Frames: 90, Aliased: true}, 60},
		goldenCase{"seed42_frame0_wheels", mixed, base, 0},
	)
	return cases
}

// TestGolden compares stills against testdata/*.png (regenerate with
// go test ./internal/render -update). Pixels may differ slightly across
// architectures (fused multiply-add changes the float rounding), so a few
// pixels may differ by a small amount; anything more fails and writes the
// image and a difference map to a temporary directory.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got := Still(tc.c, tc.o, tc.frame)
			path := filepath.Join("testdata", tc.name+".png")
			if *update {
				writePNG(t, path, got)
				return
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			defer f.Close()
			want, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if want.Bounds() != got.Bounds() {
				t.Fatalf("size %v, golden %v", got.Bounds(), want.Bounds())
			}
			diff := image.NewRGBA(got.Bounds())
			bad, worst := 0, 0
			for y := got.Rect.Min.Y; y < got.Rect.Max.Y; y++ {
				for x := got.Rect.Min.X; x < got.Rect.Max.X; x++ {
					g := got.RGBAAt(x, y)
					wr, wg, wb, _ := want.At(x, y).RGBA()
					d := max(absDiff(g.R, uint8(wr>>8)), absDiff(g.G, uint8(wg>>8)), absDiff(g.B, uint8(wb>>8)))
					worst = max(worst, d)
					if d > 24 {
						bad++
						diff.SetRGBA(x, y, color.RGBA{0xff, 0, 0, 0xff})
					} else if d > 0 {
						diff.SetRGBA(x, y, color.RGBA{0xff, 0xff, 0, 0xff})
					} else {
						diff.SetRGBA(x, y, color.RGBA{0, 0, 0, 0xff})
					}
				}
			}
			if limit := got.Rect.Dx() * got.Rect.Dy() / 1000; bad > limit {
				dir, err := os.MkdirTemp("", "whirl-golden-")
				if err != nil {
					t.Fatal(err)
				}
				writePNG(t, filepath.Join(dir, tc.name+".got.png"), got)
				writePNG(t, filepath.Join(dir, tc.name+".diff.png"), diff)
				t.Errorf("%d pixels differ by more than 24 (limit %d, worst %d); image and diff (red: large, yellow: small) in %s",
					bad, limit, worst, dir)
			}
		})
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func writePNG(t testing.TB, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestIncrementalEqualsCold: every frame reached by advancing one persistent
// trail layer (with the overlay on a copy) is byte-identical to the same
// frame rendered cold by Still.
func TestIncrementalEqualsCold(t *testing.T) {
	c := generate(t, curve.Params{Seed: 11, Wheels: 9})
	for _, o := range []Options{
		{Width: 200, Height: 160, Frames: 40, Style: Trace},
		{Width: 200, Height: 160, Frames: 40, Style: Wheels},
		{Width: 200, Height: 160, Frames: 40, Style: Wheels, Aliased: true},
		{Width: 120, Height: 120, Frames: 1500, Style: Wheels}, // more frames than default samples
		{Width: 120, Height: 120, Frames: 1, Style: Wheels},
	} {
		t.Run(fmt.Sprintf("%v_aliased=%v_frames=%d", o.Style, o.Aliased, o.Frames), func(t *testing.T) {
			sc := newScene(c, o)
			tr := sc.newTrail()
			fr := sc.newFrame()
			check := map[int]bool{0: true, 1: true, o.Frames / 3: true, o.Frames / 2: true, o.Frames - 1: true}
			for f := range o.Frames {
				tr.advance(f)
				if !check[f] {
					continue
				}
				copy(fr.img.Pix, tr.img.Pix)
				sc.overlay(fr, f)
				cold := Still(c, o, f)
				if !bytes.Equal(fr.img.Pix, cold.Pix) {
					t.Fatalf("frame %d: incremental and cold renders differ in %d bytes", f, countDiff(fr.img.Pix, cold.Pix))
				}
			}
			// The last frame holds the whole curve: as much ink as the
			// finished still, give or take antialiasing at the joins.
			last, fin := Still(c, o, o.Frames-1), Still(c, o, -1)
			if o.Style == Trace {
				if a, b := ink(last, sc.o.Background), ink(fin, sc.o.Background); math.Abs(a-b) > 0.1*b {
					t.Errorf("last frame has %.0f ink, finished still %.0f", a, b)
				}
			}
		})
	}
}

// ink sums how far each pixel is from the background.
func ink(img *image.RGBA, bg color.RGBA) float64 {
	s := 0.0
	for i := 0; i+3 < len(img.Pix); i += 4 {
		s += float64(absDiff(img.Pix[i], bg.R) + absDiff(img.Pix[i+1], bg.G) + absDiff(img.Pix[i+2], bg.B))
	}
	return s
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func countColour(img *image.RGBA, c color.RGBA) int {
	n := 0
	for i := 0; i+3 < len(img.Pix); i += 4 {
		if img.Pix[i] == c.R && img.Pix[i+1] == c.G && img.Pix[i+2] == c.B {
			n++
		}
	}
	return n
}

// TestFramesMatchesStill: the pipeline's YUV for every frame equals
// converting Still's image of that frame, whatever the worker count.
func TestFramesMatchesStill(t *testing.T) {
	c := generate(t, curve.Params{Seed: 5, Wheels: 8})
	for _, o := range []Options{
		{Width: 96, Height: 64, Frames: 24, Style: Wheels},
		{Width: 96, Height: 64, Frames: 24, Style: Trace},
		{Width: 64, Height: 96, Frames: 17, Style: Wheels, Aliased: true, LineWidth: 3},
		{Width: 64, Height: 64, Frames: 1},
		{Width: 96, Height: 96, Frames: 9, LineWidth: 16, Background: color.RGBA{250, 250, 250, 255}},
		{Width: 96, Height: 96, Frames: 9, LineWidth: 16, Aliased: true},
	} {
		want := make([][]byte, o.Frames)
		for f := range want {
			img := Still(c, o, f)
			want[f] = make([]byte, i420.Size(o.Width, o.Height))
			ToYUV420(want[f], img)
		}
		for _, workers := range []int{1, 2, 3, 8} {
			t.Run(fmt.Sprintf("%v_aliased=%v_frames=%d_workers=%d", o.Style, o.Aliased, o.Frames, workers), func(t *testing.T) {
				next := 0
				err := Frames(context.Background(), c, o, workers, func(f int, yuv []byte) error {
					if f != next {
						t.Fatalf("got frame %d, want %d", f, next)
					}
					next++
					if !bytes.Equal(yuv, want[f]) {
						t.Errorf("frame %d: YUV differs from the still in %d bytes", f, countDiff(yuv, want[f]))
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if next != o.Frames {
					t.Errorf("emitted %d frames, want %d", next, o.Frames)
				}
			})
		}
	}
}

// TestFramesMatchesStillSeeds: the same over many generated curves, small.
func TestFramesMatchesStillSeeds(t *testing.T) {
	for seed := range uint64(16) {
		c := generate(t, curve.Params{Seed: 1000 + seed})
		o := Options{Width: 72, Height: 56, Frames: 10, Style: Style(1 + seed%2), Aliased: seed%3 == 0, LineWidth: float64(seed % 5)}
		err := Frames(context.Background(), c, o, 2, func(f int, yuv []byte) error {
			want := make([]byte, len(yuv))
			ToYUV420(want, Still(c, o, f))
			if !bytes.Equal(yuv, want) {
				return fmt.Errorf("seed %d frame %d: YUV differs from the still in %d bytes", 1000+seed, f, countDiff(yuv, want))
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// TestFrameRangeMatchesFrames: any run of frames started cold is
// byte-identical to the same frames of the whole animation, and ranges
// outside the animation are refused.
func TestFrameRangeMatchesFrames(t *testing.T) {
	c := generate(t, curve.Params{Seed: 21, Wheels: 7})
	o := Options{Width: 80, Height: 64, Frames: 30}
	var whole [][]byte
	if err := Frames(context.Background(), c, o, 2, func(_ int, yuv []byte) error {
		whole = append(whole, bytes.Clone(yuv))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ first, count, workers int }{
		{0, 30, 1}, {0, 7, 2}, {7, 7, 3}, {29, 1, 1}, {12, 18, 2}, {30, 0, 1},
	} {
		t.Run(fmt.Sprintf("first=%d_count=%d", tc.first, tc.count), func(t *testing.T) {
			next := tc.first
			err := FrameRange(context.Background(), c, o, tc.first, tc.count, tc.workers, func(f int, yuv []byte) error {
				if f != next {
					t.Fatalf("got frame %d, want %d", f, next)
				}
				next++
				if !bytes.Equal(yuv, whole[f]) {
					t.Errorf("frame %d differs from the whole render in %d bytes", f, countDiff(yuv, whole[f]))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if next != tc.first+tc.count {
				t.Errorf("emitted up to %d, want %d", next, tc.first+tc.count)
			}
		})
	}
	for _, bad := range []struct{ first, count int }{{-1, 2}, {29, 2}, {0, 31}, {3, -1}} {
		if err := FrameRange(context.Background(), c, o, bad.first, bad.count, 1, func(int, []byte) error { return nil }); err == nil {
			t.Errorf("range first=%d count=%d accepted", bad.first, bad.count)
		}
	}
}

// TestConcurrentRenders: 8 goroutines rendering 8 different curves at once
// each get exactly what a solo render gives (run with -race).
func TestConcurrentRenders(t *testing.T) {
	type job struct {
		c curve.Curve
		o Options
	}
	var jobs []job
	for i := range 8 {
		o := Options{Width: 128, Height: 96, Frames: 12, Style: Style(1 + i%2), Aliased: i == 5}
		jobs = append(jobs, job{generate(t, curve.Params{Seed: uint64(100 + i)}), o})
	}
	soloStill := make([]*image.RGBA, len(jobs))
	soloVideo := make([][]byte, len(jobs))
	for i, j := range jobs {
		soloStill[i] = Still(j.c, j.o, 7)
		var buf bytes.Buffer
		if err := Frames(context.Background(), j.c, j.o, 2, func(_ int, yuv []byte) error { buf.Write(yuv); return nil }); err != nil {
			t.Fatal(err)
		}
		soloVideo[i] = buf.Bytes()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Go(func() {
			if img := Still(j.c, j.o, 7); !bytes.Equal(img.Pix, soloStill[i].Pix) {
				errs[i] = fmt.Errorf("job %d: concurrent still differs", i)
				return
			}
			var buf bytes.Buffer
			if err := Frames(context.Background(), j.c, j.o, 2, func(_ int, yuv []byte) error { buf.Write(yuv); return nil }); err != nil {
				errs[i] = err
				return
			}
			if !bytes.Equal(buf.Bytes(), soloVideo[i]) {
				errs[i] = fmt.Errorf("job %d: concurrent video differs", i)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

func TestFramesCancel(t *testing.T) {
	c := generate(t, curve.Params{Seed: 3})
	o := Options{Width: 160, Height: 120, Frames: 500}

	t.Run("cancel from emit", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		emitted := 0
		err := Frames(ctx, c, o, 2, func(f int, _ []byte) error {
			emitted++
			if f == 5 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if emitted != 6 {
			t.Errorf("emitted %d frames after cancelling at frame 5", emitted)
		}
		goleak.VerifyNone(t)
	})

	t.Run("cancel from outside", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var (
			once sync.Once
			late int // frames handed over after the cancel
		)
		err := Frames(ctx, c, Options{Width: 320, Height: 240, Frames: 100000}, 3, func(int, []byte) error {
			if ctx.Err() != nil {
				late++
			}
			once.Do(func() { time.AfterFunc(20*time.Millisecond, cancel) })
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		// Frames looks at ctx before each frame it hands over: only the one
		// under way as the cancel came may follow it.
		if late > 1 {
			t.Errorf("%d frames handed over after the cancel", late)
		}
		goleak.VerifyNone(t)
	})

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		err := Frames(ctx, c, Options{Width: 320, Height: 240, Frames: 100000}, 2, func(int, []byte) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		goleak.VerifyNone(t)
	})

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Frames(ctx, c, o, 2, func(int, []byte) error {
			t.Error("emit called")
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("emit error", func(t *testing.T) {
		boom := errors.New("encoder gone")
		err := Frames(context.Background(), c, o, 2, func(f int, _ []byte) error {
			if f == 3 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
		goleak.VerifyNone(t)
	})

	t.Run("emit panics", func(t *testing.T) {
		defer func() {
			if r := recover(); r != "emit bug" {
				t.Errorf("recovered %v", r)
			}
			goleak.VerifyNone(t)
		}()
		_ = Frames(context.Background(), c, o, 2, func(f int, _ []byte) error {
			if f == 2 {
				panic("emit bug")
			}
			return nil
		})
	})

	t.Run("worker panics", func(t *testing.T) {
		sc := newScene(c, o.WithDefaults())
		sc.testHook = func(f int) {
			if f == 7 {
				panic("drawing bug")
			}
		}
		emitted := 0
		err := sc.run(context.Background(), 0, sc.frames, 2, func(int, []byte) error { emitted++; return nil })
		if err == nil || !strings.Contains(err.Error(), "drawing bug") || !strings.Contains(err.Error(), "frame 7") {
			t.Fatalf("err = %v", err)
		}
		if emitted != 7 {
			t.Errorf("emitted %d frames before the broken one", emitted)
		}
		goleak.VerifyNone(t)
	})

	t.Run("odd size", func(t *testing.T) {
		err := Frames(context.Background(), c, Options{Width: 101, Height: 100}, 1, func(int, []byte) error { return nil })
		if err == nil {
			t.Fatal("odd width accepted")
		}
	})
}

// TestFramesBoundedAndRecycled: only a few YUV buffers are ever handed out
// (they are recycled), and each is overwritten after emit returns.
func TestFramesBoundedAndRecycled(t *testing.T) {
	c := generate(t, curve.Params{Seed: 8})
	buffers := map[*byte]bool{}
	workers := 2
	err := Frames(context.Background(), c, Options{Width: 64, Height: 64, Frames: 200}, workers, func(_ int, yuv []byte) error {
		buffers[&yuv[0]] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(buffers) > workers+2 {
		t.Errorf("%d distinct buffers for %d workers", len(buffers), workers)
	}
}

// TestStillFitsFrame: nothing is drawn in the outer margin, for many curves,
// both styles and frames through the animation.
func TestStillFitsFrame(t *testing.T) {
	for seed := range uint64(12) {
		c := generate(t, curve.Params{Seed: seed * 31})
		for _, st := range []Style{Trace, Wheels} {
			o := Options{Width: 160, Height: 120, Style: st, Frames: 10}
			bg := o.WithDefaults().Background
			for _, f := range []int{0, 4, 9, -1} {
				img := Still(c, o, f)
				const m = 3 // the margin is 4% of 120 ≈ 5 px, less the antialiasing
				for y := range img.Rect.Dy() {
					for x := range img.Rect.Dx() {
						if (x < m || y < m || x >= img.Rect.Dx()-m || y >= img.Rect.Dy()-m) && img.RGBAAt(x, y) != bg {
							t.Fatalf("seed %d %v frame %d: pixel (%d,%d) drawn in the margin", seed*31, st, f, x, y)
						}
					}
				}
			}
		}
	}
}

// TestStillDrawsSomething: both styles put pen colour on the image and the
// Wheels style adds more than Trace (the wheels).
func TestStillDrawsSomething(t *testing.T) {
	c := fixedCurve(curve.Square)
	tr := Still(c, Options{Width: 200, Height: 200, Style: Trace, Frames: 10}, 5)
	wh := Still(c, Options{Width: 200, Height: 200, Style: Wheels, Frames: 10}, 5)
	bg := Options{}.WithDefaults().Background
	if countColour(tr, Options{}.WithDefaults().Pen) == 0 {
		t.Error("no pen pixels in the trace")
	}
	if n, m := 200*200-countColour(tr, bg), 200*200-countColour(wh, bg); m <= n {
		t.Errorf("wheels style drew %d pixels, trace %d", m, n)
	}
	// Frame 0 of the trace is empty.
	if n := 200*200 - countColour(Still(c, Options{Width: 200, Height: 200, Style: Trace, Frames: 10}, 0), bg); n != 0 {
		t.Errorf("frame 0 of the trace has %d pixels drawn", n)
	}
	// An empty curve is just background.
	if n := countColour(Still(curve.Curve{}, Options{Width: 20, Height: 20}, -1), bg); n != 400 {
		t.Errorf("empty curve: %d background pixels of 400", n)
	}
}

// TestStillNonFinite: a curve with NaNs or infinities (which Validate would
// refuse) draws as background, without panicking or hanging.
func TestStillNonFinite(t *testing.T) {
	bg := Options{}.WithDefaults().Background
	for _, w := range []curve.Wheel{
		{Radius: math.NaN(), Frequency: 1, Shape: curve.Circle},
		{Radius: math.Inf(1), Frequency: 1, Shape: curve.Square},
		{Radius: 1, Frequency: 1, Phase: math.Inf(-1), Shape: curve.Circle},
		{Radius: 1, Frequency: 1, Shape: curve.Ellipse, Aspect: 5e-324},
		{Radius: 1e308, Frequency: 1, Shape: curve.Circle},
	} {
		c := curve.Curve{KFold: 1, Wheels: []curve.Wheel{w, w}}
		for _, f := range []int{-1, 3} {
			if n := countColour(Still(c, Options{Width: 40, Height: 40, Frames: 5}, f), bg); n != 1600 {
				t.Errorf("%+v frame %d: %d of 1600 pixels background", w, f, n)
			}
		}
	}
	// Valid but absurdly small: no NaNs, at most a dot.
	tiny := curve.Curve{KFold: 1, Wheels: []curve.Wheel{{Radius: 5e-324, Frequency: 1, Shape: curve.Circle}, {Radius: 5e-324, Frequency: 2, Shape: curve.Square}}}
	if err := tiny.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := countColour(Still(tiny, Options{Width: 40, Height: 40}, -1), bg); n < 1500 {
		t.Errorf("subnormal curve: only %d of 1600 pixels background", n)
	}
	// A NaN aspect on a circle is ignored, as Validate ignores it.
	c := curve.Curve{KFold: 1, Wheels: []curve.Wheel{{Radius: 1, Frequency: 1, Shape: curve.Circle, Aspect: math.NaN()}}}
	if n := countColour(Still(c, Options{Width: 40, Height: 40}, -1), bg); n == 1600 {
		t.Error("circle with a NaN aspect drew nothing")
	}
}

// TestWheelsRotate: a square wheel's outline turns as t advances.
func TestWheelsRotate(t *testing.T) {
	c := curve.Curve{KFold: 1, Wheels: []curve.Wheel{{Radius: 1, Frequency: 1, Shape: curve.Square}, {Radius: 0.2, Frequency: 3, Shape: curve.Circle}}}
	if c.Spin() == 0 {
		t.Fatal("test curve does not spin")
	}
	o := Options{Width: 200, Height: 200, Frames: 16, Style: Wheels}
	a, b := Still(c, o, 0), Still(c, o, 2)
	// Look only at the square's corners region: far from the centre.
	diff := 0
	for y := range 200 {
		for x := range 200 {
			if math.Hypot(float64(x-100), float64(y-100)) > 70 && a.RGBAAt(x, y) != b.RGBAAt(x, y) {
				diff++
			}
		}
	}
	if diff < 100 {
		t.Errorf("square outline barely changed between frames (%d pixels)", diff)
	}
}

// yuvRef is the textbook BT.601 limited-range conversion in float64.
func yuvRef(r, g, b float64) (y, cb, cr float64) {
	y = 16 + 219*(0.299*r+0.587*g+0.114*b)/255
	cb = 128 + 224*(-0.168736*r-0.331264*g+0.5*b)/255
	cr = 128 + 224*(0.5*r-0.418688*g-0.081312*b)/255
	return
}

func TestToYUV420KnownColours(t *testing.T) {
	cases := []struct {
		c         color.RGBA
		y, cb, cr uint8
	}{
		{color.RGBA{255, 255, 255, 255}, 235, 128, 128},
		{color.RGBA{0, 0, 0, 255}, 16, 128, 128},
		{color.RGBA{128, 128, 128, 255}, 126, 128, 128},
		{color.RGBA{255, 0, 0, 255}, 81, 90, 240},
		{color.RGBA{0, 255, 0, 255}, 145, 54, 34},
		{color.RGBA{0, 0, 255, 255}, 41, 240, 110},
		{color.RGBA{0x10, 0x14, 0x18, 255}, 33, 130, 126},
	}
	for _, tc := range cases {
		img := image.NewRGBA(image.Rect(0, 0, 4, 2))
		fillRGBA(img, tc.c)
		dst := make([]byte, i420.Size(4, 2))
		ToYUV420(dst, img)
		for i := range 8 {
			if dst[i] != tc.y {
				t.Errorf("%v: Y = %d, want %d", tc.c, dst[i], tc.y)
			}
		}
		for i := 8; i < 10; i++ {
			if dst[i] != tc.cb || dst[i+2] != tc.cr {
				t.Errorf("%v: Cb,Cr = %d,%d, want %d,%d", tc.c, dst[i], dst[i+2], tc.cb, tc.cr)
			}
		}
		y, cb, cr := yuvRef(float64(tc.c.R), float64(tc.c.G), float64(tc.c.B))
		if math.Abs(y-float64(tc.y)) > 0.5 || math.Abs(cb-float64(tc.cb)) > 0.5 || math.Abs(cr-float64(tc.cr)) > 0.5 {
			t.Errorf("%v: table entry %d,%d,%d is not the rounded reference %.2f,%.2f,%.2f", tc.c, tc.y, tc.cb, tc.cr, y, cb, cr)
		}
	}
}

func TestToYUV420MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// An offset, odd-strided sub-image with random pixels and runs of
	// repeated blocks.
	big := image.NewRGBA(image.Rect(-3, -5, 61, 41))
	for i := range big.Pix {
		big.Pix[i] = uint8(rng.IntN(256))
	}
	for y := 10; y < 20; y++ {
		for x := 0; x < 30; x++ {
			big.SetRGBA(x, y, color.RGBA{200, 30, 90, 255})
		}
	}
	img := big.SubImage(image.Rect(-1, -3, 55, 37)).(*image.RGBA)
	w, h := img.Rect.Dx(), img.Rect.Dy()
	dst := make([]byte, i420.Size(w, h)+7)
	ToYUV420(dst, img)
	cw := w / 2
	worst := 0.0
	for y := range h {
		for x := range w {
			p := img.RGBAAt(img.Rect.Min.X+x, img.Rect.Min.Y+y)
			ry, _, _ := yuvRef(float64(p.R), float64(p.G), float64(p.B))
			worst = max(worst, math.Abs(float64(dst[y*w+x])-ry))
		}
	}
	for k := range h / 2 {
		for i := range cw {
			var sr, sg, sb float64
			for _, d := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
				p := img.RGBAAt(img.Rect.Min.X+2*i+d[0], img.Rect.Min.Y+2*k+d[1])
				sr, sg, sb = sr+float64(p.R), sg+float64(p.G), sb+float64(p.B)
			}
			_, rcb, rcr := yuvRef(sr/4, sg/4, sb/4)
			worst = max(worst, math.Abs(float64(dst[w*h+k*cw+i])-rcb))
			worst = max(worst, math.Abs(float64(dst[w*h+cw*(h/2)+k*cw+i])-rcr))
		}
	}
	if worst > 1 {
		t.Errorf("largest difference from the float reference %.3f, want <= 1", worst)
	}
	for i := i420.Size(w, h); i < len(dst); i++ {
		if dst[i] != 0 {
			t.Error("wrote past the frame")
		}
	}

	for _, bad := range []func(){
		func() { ToYUV420(make([]byte, 100), image.NewRGBA(image.Rect(0, 0, 5, 4))) },
		func() { ToYUV420(make([]byte, 10), image.NewRGBA(image.Rect(0, 0, 4, 4))) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			bad()
		}()
	}
}

func TestParseHexColor(t *testing.T) {
	for in, want := range map[string]color.RGBA{
		"#101418": {0x10, 0x14, 0x18, 0xff},
		"#F2c14E": {0xf2, 0xc1, 0x4e, 0xff},
		"#000000": {0, 0, 0, 0xff},
	} {
		got, err := ParseHexColor(in)
		if err != nil || got != want {
			t.Errorf("ParseHexColor(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "101418", "#10141", "#1014188", "#10141g", "#ffff", " #101418"} {
		if _, err := ParseHexColor(in); err == nil {
			t.Errorf("ParseHexColor(%q) accepted", in)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	o := Options{}.WithDefaults()
	bg, _ := ParseHexColor(DefaultBackgroundHex)
	pen, _ := ParseHexColor(DefaultPenHex)
	if o.Width != 720 || o.Height != 720 || o.Frames != 300 || o.Style != Wheels || o.Background != bg || o.Pen != pen || o.LineWidth != 2 {
		t.Errorf("defaults %+v", o)
	}
	o = Options{Width: 100, Height: 2000, LineWidth: 100, Style: Trace, Background: color.RGBA{1, 2, 3, 0}}.WithDefaults()
	if o.LineWidth != MaxLineWidth || o.Style != Trace || o.Background != (color.RGBA{1, 2, 3, 255}) {
		t.Errorf("%+v", o)
	}
	if o := (Options{Width: 100, LineWidth: math.NaN()}).WithDefaults(); o.LineWidth != 1 {
		t.Errorf("NaN line width -> %v", o.LineWidth)
	}
	if o := (Options{LineWidth: 0.1}).WithDefaults(); o.LineWidth != 0.5 {
		t.Errorf("0.1 line width -> %v", o.LineWidth)
	}
}
