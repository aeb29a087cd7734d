//go:build unix

package render

import (
	"context"
	"fmt"
	"image"
	"syscall"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/i420"
)

// cpuTime is the CPU time (user + system) the process has used. The machine
// these run on is shared, so wall time per op swings with the load; CPU time
// per op is the steadier figure.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCurve is a generated curve with the given number of wheels and mixed
// shapes.
func benchCurve(b testing.TB, wheels int) curve.Curve {
	c, err := curve.Generate(curve.Params{Seed: 2024, Wheels: wheels, KFold: 7})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkFrame measures one 720×720 video frame as Frames makes it, all on
// one goroutine: the trail stage (advance the trail and its YUV by a frame,
// copy what the frame needs) and the worker's part (draw the overlay, convert
// what it touched).
func BenchmarkFrame(b *testing.B) {
	for _, tc := range []struct {
		style  Style
		wheels int
	}{{Trace, 6}, {Trace, 13}, {Wheels, 6}, {Wheels, 12}, {Wheels, 13}} {
		b.Run(fmt.Sprintf("%v/%dwheels", tc.style, tc.wheels), func(b *testing.B) {
			sc := newScene(benchCurve(b, tc.wheels), Options{Width: 720, Height: 720, Style: tc.style})
			tr := sc.newTrail()
			tr.trackYUV()
			s := sc.newSlot()
			f := 0
			cpu0 := cpuTime()
			for b.Loop() {
				if f == sc.frames {
					b.StopTimer()
					tr = sc.newTrail()
					tr.trackYUV()
					f = 0
					b.StartTimer()
				}
				sc.prepare(tr, s, f)
				if err := sc.finish(s); err != nil {
					b.Fatal(err)
				}
				f++
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/frame")
			b.ReportMetric((cpuTime()-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/frame")
		})
	}
}

// BenchmarkFrames measures the whole pipeline at 720×720 with 2 workers.
func BenchmarkFrames(b *testing.B) {
	for _, style := range []Style{Trace, Wheels} {
		b.Run(style.String(), func(b *testing.B) {
			c := benchCurve(b, 12)
			o := Options{Width: 720, Height: 720, Style: style, Frames: 120}
			frames := 0
			cpu0 := cpuTime()
			for b.Loop() {
				err := Frames(context.Background(), c, o, 2, func(int, []byte) error { frames++; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(frames), "ms/frame")
			b.ReportMetric((cpuTime()-cpu0).Seconds()*1000/float64(frames), "cpu-ms/frame")
		})
	}
}

// BenchmarkToYUV420 converts a rendered 720×720 frame (mostly background, the
// usual case) and a worst-case frame of noise.
func BenchmarkToYUV420(b *testing.B) {
	frame := Still(benchCurve(b, 12), Options{Width: 720, Height: 720, Frames: 300}, 200)
	noise := image.NewRGBA(image.Rect(0, 0, 720, 720))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(i*7 + i/4099)
	}
	for _, tc := range []struct {
		name string
		img  *image.RGBA
	}{{"frame", frame}, {"noise", noise}} {
		b.Run(tc.name, func(b *testing.B) {
			dst := make([]byte, i420.Size(720, 720))
			b.SetBytes(int64(len(tc.img.Pix)))
			cpu0 := cpuTime()
			for b.Loop() {
				ToYUV420(dst, tc.img)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(720*720), "ns/pixel")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/(720*720), "cpu-ns/pixel")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/frame")
		})
	}
}

// BenchmarkStill is a finished 720×720 still, scene set-up included.
func BenchmarkStill(b *testing.B) {
	c := benchCurve(b, 12)
	for b.Loop() {
		Still(c, Options{Width: 720, Height: 720}, -1)
	}
}
