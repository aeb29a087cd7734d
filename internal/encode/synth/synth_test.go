package synth

import (
	"bytes"
	"testing"

	"github.com/whirl-dev/whirl/internal/i420"
)

func TestDeterministicAndMoving(t *testing.T) {
	const w, h, n = 64, 48, 4
	a, b := New(w, h, n, 7), New(w, h, n, 7)
	fa, fb := make([]byte, i420.Size(w, h)), make([]byte, i420.Size(w, h))
	var prev []byte
	for i := range n {
		if !a.Next(fa) || !b.Next(fb) {
			t.Fatalf("ran out at frame %d", i)
		}
		if !bytes.Equal(fa, fb) {
			t.Fatalf("frame %d differs between two sources with the same seed", i)
		}
		if prev != nil && bytes.Equal(prev, fa) {
			t.Errorf("frame %d equals the previous one", i)
		}
		prev = append(prev[:0], fa...)
	}
	if a.Next(fa) {
		t.Error("Next past the last frame")
	}
	c := New(w, h, n, 8)
	c.Next(fb)
	d := New(w, h, n, 7)
	d.Next(fa)
	if bytes.Equal(fa, fb) {
		t.Error("different seeds gave the same first frame")
	}
}
