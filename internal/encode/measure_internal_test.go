//go:build unix

package encode

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/encode/synth"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/i420"
)

// TestMeasureDepth measures how many frames must go into ffmpeg before the
// first media segment comes out, for the default arguments and variants of
// them. Frames are fed slowly (one per pace), so the count does not depend
// on the machine's load: time to first fragment ≈ start-up + depth × time
// per frame (the slower of rendering and encoding).
//
//	WHIRL_MEASURE=1 go test -run TestMeasureDepth -v ./internal/encode
func TestMeasureDepth(t *testing.T) {
	if os.Getenv("WHIRL_MEASURE") == "" {
		t.Skip("set WHIRL_MEASURE=1 to measure (slow)")
	}
	const w, h, n = 720, 720, 45
	const pace = 40 * time.Millisecond
	fs := i420.Size(w, h)
	raw := make([]byte, n*fs)
	src := synth.New(w, h, n, 1)
	for i := range n {
		src.Next(raw[i*fs : (i+1)*fs])
	}
	o, err := Options{Width: w, Height: h, FPS: 30}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	variants := []struct {
		name string
		edit func([]string) []string
	}{
		{"defaults", nil},
		{"x264 sync-lookahead auto (x264 default)", func(a []string) []string { return set(a, "-x264-params", "") }},
		{"threads 1", func(a []string) []string { return set(a, "-threads", "1") }},
		{"rc-lookahead 5", func(a []string) []string { return set(a, "-x264-params", "sync-lookahead=0:rc-lookahead=5") }},
		{"tune zerolatency", func(a []string) []string { return set(a, "-tune", "zerolatency") }},
		{"fragment 100ms", func(a []string) []string { return set(a, "-frag_duration", "100000") }},
	}
	var out strings.Builder
	fmt.Fprintf(&out, "| arguments | frames in before the first fragment | init segment after (ms) | bytes for %d frames |\n|---|---|---|---|\n", n)
	for _, v := range variants {
		a := args(o)
		if v.edit != nil {
			a = v.edit(a)
		}
		var depths []int
		var inits []time.Duration
		var size int
		for range 3 {
			d, init, b := depth(t, a, raw, fs, n, pace)
			depths = append(depths, d)
			inits = append(inits, init)
			size = b
		}
		slices.Sort(depths)
		slices.Sort(inits)
		fmt.Fprintf(&out, "| %s | %d | %d | %d |\n", v.name, depths[1], inits[1].Milliseconds(), size)
	}
	t.Log("\n" + out.String())
}

// set replaces the value of flag in a, or inserts flag and value before the
// output options; an empty value removes the flag.
func set(a []string, flag, value string) []string {
	a = slices.Clone(a)
	if i := slices.Index(a, flag); i >= 0 {
		if value == "" {
			return slices.Delete(a, i, i+2)
		}
		a[i+1] = value
		return a
	}
	i := slices.Index(a, "-bsf:v")
	return slices.Insert(a, i, flag, value)
}

// depth feeds frames one per pace and reports how many had been written when
// the first media segment arrived, when the init segment arrived, and the
// output size.
func depth(t *testing.T, a []string, raw []byte, fs, n int, pace time.Duration) (int, time.Duration, int) {
	cmd := exec.Command("ffmpeg", a...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	firstAt := make(chan int, 1)
	var initAt time.Duration
	var size int
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := fmp4.ReadSegments(stdout, func(seg fmp4.Segment) error {
			size += len(seg.Data)
			if seg.Init {
				initAt = time.Since(t0)
				return nil
			}
			select {
			case firstAt <- int(time.Since(t0)/pace) + 1:
			default:
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}()
	for i := range n {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * pace)))
		if _, err := in.Write(raw[i*fs : (i+1)*fs]); err != nil {
			t.Fatal(err)
		}
	}
	_ = in.Close()
	<-done
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-firstAt:
		return d, initAt, size
	default:
		t.Fatal("no media segment")
		return 0, 0, 0
	}
}
