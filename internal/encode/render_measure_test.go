//go:build whirl_render && unix

package encode_test

// The same measurements on the real renderer's frames (internal/render).
// The build tag keeps this slow, opt-in measurement, and encode's test
// dependency on the renderer, out of ordinary test runs:
//
//	WHIRL_MEASURE=1 go test -tags whirl_render -run TestMeasureRender -v ./internal/encode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/render"
)

func TestMeasureRender(t *testing.T) {
	if os.Getenv("WHIRL_MEASURE") == "" {
		t.Skip("set WHIRL_MEASURE=1")
	}
	cv, err := curve.Generate(curve.Params{Seed: 2024, Wheels: 12, KFold: 7})
	if err != nil {
		t.Fatal(err)
	}
	ro := render.Options{Width: mW, Height: mH, Frames: mFrames}
	ctx := context.Background()

	// the real frames, kept for the size and quality comparison
	c := clip{w: mW, h: mH, fps: mFPS, n: mFrames}
	t0 := time.Now()
	if err := render.Frames(ctx, cv, ro, 2, func(_ int, yuv []byte) error {
		c.data = append(c.data, yuv...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	renderOnly := time.Since(t0)
	c.rawPath = filepath.Join(t.TempDir(), "render.yuv")
	if err := os.WriteFile(c.rawPath, c.data, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := reference(t, c)
	refSSIM, refPSNR := quality(t, c, ref)
	var out strings.Builder
	fmt.Fprintf(&out, "real renderer, 12 wheels: render alone %.0f fps; reference medium CRF 23: %d bytes, SSIM %.2f dB, PSNR %.2f dB\n\n",
		float64(mFrames)/renderOnly.Seconds(), len(ref), refSSIM, refPSNR)

	fmt.Fprintf(&out, "| preset | CRF | bytes | × ref | SSIM dB | PSNR dB |\n|---|---|---|---|---|---|\n")
	for _, p := range []string{"ultrafast", "superfast", "veryfast", "faster", "medium"} {
		s := run(t, c, opts(p, 23), 0)
		ssim, psnr := quality(t, c, s.data)
		fmt.Fprintf(&out, "| %s | 23 | %d | %.3f | %.2f | %.2f |\n", p, len(s.data), float64(len(s.data))/float64(len(ref)), ssim, psnr)
	}

	// render → encode as the service does it: time from the request to the
	// first media segment and to the end
	fmt.Fprintf(&out, "\n| fragment | render workers | first fragment ms (median, min–max of 5) | total ms (median) |\n|---|---|---|---|\n")
	for _, fd := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond} {
		for _, workers := range []int{1, 2} {
			var firsts, totals []time.Duration
			for range 5 {
				var first time.Duration
				t0 := time.Now()
				o := opts("", 0)
				o.FragmentDuration = fd
				e, err := encode.Start(ctx, o, func(s fmp4.Segment) error {
					if !s.Init && first == 0 {
						first = time.Since(t0)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := render.Frames(ctx, cv, ro, workers, func(_ int, yuv []byte) error { return e.WriteFrame(yuv) }); err != nil {
					t.Fatal(err)
				}
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
				firsts = append(firsts, first)
				totals = append(totals, time.Since(t0))
			}
			fmt.Fprintf(&out, "| %v | %d | %s (%s–%s) | %s |\n", fd, workers, ms(median(firsts)), ms(slices.Min(firsts)), ms(slices.Max(firsts)), ms(median(totals)))
		}
	}
	t.Log("\n" + out.String())
}
