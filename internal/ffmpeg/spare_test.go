package ffmpeg

import (
	"context"
	"slices"
	"testing"
	"time"
)

// idle waits until s holds a started process and returns their pids.
func idle(ctx context.Context, t *testing.T, s *Spare) []int {
	t.Helper()
	for {
		if ready, _ := s.Idle(); len(ready) > 0 {
			return ready
		}
		select {
		case <-ctx.Done():
			t.Fatal("no spare started")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestSpare: a spare is handed over only for its own command, and is
// replaced once the process it lent has exited, not before.
func TestSpare(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := Command{Path: "cat"}
	s := NewSpare(cmd, 1)
	defer s.Close()
	ready := idle(ctx, t, s)
	if p := s.Take(Command{Path: "cat", Args: []string{"-u"}}); p != nil {
		p.Stop()
		t.Fatal("a spare was handed over for another command")
	}
	p := s.Take(cmd)
	if p == nil || p.PID() != ready[0] {
		t.Fatalf("Take = %v, want the ready spare %d", p, ready[0])
	}
	if r, starting := s.Idle(); len(r)+starting != 0 {
		t.Errorf("replaced while the lent process runs: %v ready, %d starting", r, starting)
	}
	_ = p.Stdin().Close() // cat exits
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = p.Stdout().Close()
	if again := idle(ctx, t, s); slices.Contains(again, p.PID()) {
		t.Errorf("the replacement is the lent process %d", p.PID())
	}
}
