package encode_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/encode/mp4check"
)

// TestSpareMatchesFreshStart: an encoder taken from the spare produces the
// same bytes as one started on demand, a second take gets a refilled spare,
// other options fall back to a fresh start, and Close leaves no process.
func TestSpareMatchesFreshStart(t *testing.T) {
	const w, h, n = 96, 64, 12
	o := encode.Options{Width: w, Height: h, FPS: 24}
	fs := frames(t, w, h, n)
	want, err := encodeAll(context.Background(), o, fs)
	if err != nil {
		t.Fatal(err)
	}
	spare := encode.NewSpare(o)
	var pids []int
	take := func(opts encode.Options) []byte {
		t.Helper()
		var (
			mu  sync.Mutex
			out []byte
		)
		e, err := spare.Start(context.Background(), opts, func(s encode.Segment) error {
			mu.Lock()
			defer mu.Unlock()
			out = append(out, s.Data...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, e.PID())
		for _, f := range fs {
			if err := e.WriteFrame(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return out
	}
	time.Sleep(300 * time.Millisecond) // let the first spare start
	withFrames := o
	withFrames.Frames = n
	for i := range 2 {
		if got := take(withFrames); !bytes.Equal(got, want.data) {
			t.Fatalf("take %d: spare output differs from a fresh encode (%d vs %d bytes)", i, len(got), len(want.data))
		}
	}
	other := o
	other.FPS = 25
	mp4check.Probe(t, take(other), mp4check.Expect{Width: w, Height: h, FPS: 25, Frames: n})
	spare.Close()
	for _, pid := range pids {
		waitGone(t, pid, time.Second)
	}
}
