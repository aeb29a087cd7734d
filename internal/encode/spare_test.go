package encode_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
	"github.com/whirl-dev/whirl/internal/fmp4/mp4check"
)

// TestSpareMatchesFreshStart: an encoder taken from the spare is the spare's
// ffmpeg and produces the same bytes as one started on demand, a second
// take gets a refilled spare, other options start a fresh ffmpeg and leave
// the spare in place, and Close leaves no process.
func TestSpareMatchesFreshStart(t *testing.T) {
	const w, h, n = 96, 64, 12
	o := encode.Options{Width: w, Height: h, FPS: 24}
	fs := frames(t, w, h, n)
	want, err := encodeAll(context.Background(), o, fs)
	if err != nil {
		t.Fatal(err)
	}
	spare := encode.NewSpare(o, 1)
	var pids []int
	readyPID := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pid, err := spare.ReadyPID(ctx)
		if err != nil {
			t.Fatalf("waiting for the spare ffmpeg: %v", err)
		}
		return pid
	}
	take := func(opts encode.Options) (pid int, out []byte) {
		t.Helper()
		var mu sync.Mutex
		e, err := spare.Start(context.Background(), opts, func(s fmp4.Segment) error {
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
		return e.PID(), out
	}
	withFrames := o
	withFrames.Frames = n
	for i := range 2 {
		ready := readyPID()
		pid, got := take(withFrames)
		if pid != ready {
			t.Fatalf("take %d: ran ffmpeg %d, not the spare %d", i, pid, ready)
		}
		if !bytes.Equal(got, want.data) {
			t.Fatalf("take %d: spare output differs from a fresh encode (%d vs %d bytes)", i, len(got), len(want.data))
		}
	}
	other := o
	other.FPS = 25
	ready := readyPID()
	pid, got := take(other)
	if pid == ready {
		t.Fatalf("options other than the template's took the spare %d", pid)
	}
	mp4check.Probe(t, got, mp4check.Expect{Width: w, Height: h, FPS: 25, Frames: n})
	if still := readyPID(); still != ready {
		t.Errorf("the spare changed from %d to %d without being taken", ready, still)
	}
	spare.Close()
	// Close and every encoder's Close return after reaping their ffmpeg
	for _, pid := range append(pids, ready) {
		if !gone(pid) {
			t.Errorf("ffmpeg %d still in the process table after Close", pid)
		}
	}
}

// TestSpareRefillsAfterExit: a taken spare is replaced only once its
// ffmpeg has exited, so the replacement's start-up does not compete with
// the encode that took it.
func TestSpareRefillsAfterExit(t *testing.T) {
	const w, h, n = 64, 64, 5
	o := encode.Options{Width: w, Height: h, FPS: 24, Threads: 1}
	fs := frames(t, w, h, n)
	spare := encode.NewSpare(o, 1)
	defer spare.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lentPID, err := spare.ReadyPID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out collect
	e, err := spare.Start(ctx, o, out.sink)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if err := e.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		if got := spare.Unlent(); got != 0 {
			t.Fatalf("%d spare processes held or starting while the lent one runs", got)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	refill, err := spare.ReadyPID(ctx)
	if err != nil {
		t.Fatalf("no refill after the lent ffmpeg exited: %v", err)
	}
	if refill == lentPID {
		t.Fatalf("the refill is the lent process %d", refill)
	}
}

// TestSpareSeveral: a Spare of 3 hands out 3 started ffmpeg processes in a
// row, one per segment encoder of a render, each giving a fresh encode's
// bytes; Close reaps the refills.
func TestSpareSeveral(t *testing.T) {
	const w, h, n = 64, 64, 5
	o := encode.Options{Width: w, Height: h, FPS: 24, Threads: 1}
	fs := frames(t, w, h, n)
	want, err := encodeAll(context.Background(), o, fs)
	if err != nil {
		t.Fatal(err)
	}
	spare := encode.NewSpare(o, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ready, err := spare.ReadyPIDs(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	var (
		encs []*encode.Encoder
		outs = make([]collect, 3)
		pids []int
	)
	for i := range 3 {
		e, err := spare.Start(ctx, o, outs[i].sink)
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, e)
		pids = append(pids, e.PID())
	}
	if !slices.Equal(pids, ready) {
		t.Fatalf("took %v, the spares were %v", pids, ready)
	}
	for i, e := range encs {
		for _, f := range fs {
			if err := e.WriteFrame(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(outs[i].data, want.data) {
			t.Errorf("spare %d: output differs from a fresh encode", i)
		}
	}
	refills, err := spare.ReadyPIDs(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	spare.Close()
	for _, pid := range append(pids, refills...) {
		if !gone(pid) {
			t.Errorf("ffmpeg %d still in the process table after Close", pid)
		}
	}
}
