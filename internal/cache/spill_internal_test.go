package cache

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
)

// failingSpill keeps the bytes of its first writes, then fails every write
// after limit bytes, as a disk that fills up part-way through a render.
type failingSpill struct {
	mem   memSpill
	limit int
}

func (f *failingSpill) Write(p []byte) (int, error) {
	if len(f.mem.b)+len(p) > f.limit {
		return 0, errors.New("no space left on device")
	}
	return f.mem.Write(p)
}

func (f *failingSpill) ReadAt(p []byte, off int64) (int, error) { return f.mem.ReadAt(p, off) }

// TestSpillFailsMidRender: the spill stops taking bytes after the first
// segment; the render goes on in memory and every reader still reads the
// whole video, across the head the spill kept and the tail memory took, in
// chunks that never cross a segment end.
func TestSpillFailsMidRender(t *testing.T) {
	segments := [][]byte{
		bytes.Repeat([]byte{1}, 1000),
		bytes.Repeat([]byte{2}, MaxChunk+10),
		bytes.Repeat([]byte{3}, 500),
	}
	f := &flight{hash: sha256.New(), wake: make(chan struct{}), stopped: make(chan struct{}),
		spill: &failingSpill{limit: len(segments[0]) + 10}}
	var want []byte
	for _, s := range segments {
		f.append(s)
		want = append(want, s...)
	}
	if _, ok := f.spill.(*chainSpill); !ok {
		t.Fatalf("spill after a failed write is %T, want a chain of the old spill and memory", f.spill)
	}
	f.done = true
	for _, start := range []int64{0, 500, 1000, 1005, int64(len(want)) - 1} {
		r := &Reader{src: f, pos: start}
		var got []byte
		ends := 0
		for {
			c, wake, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || wake != nil {
				t.Fatalf("from %d: Next: %v (wake %v)", start, err, wake != nil)
			}
			got = append(got, c.Data...)
			if c.SegmentEnd {
				ends++
			}
		}
		if !bytes.Equal(got, want[start:]) {
			t.Errorf("from %d: read %d bytes, not the video's last %d", start, len(got), len(want)-int(start))
		}
		if ends != 3 && start == 0 {
			t.Errorf("from 0: %d segment ends, want 3", ends)
		}
	}
}

// TestChainSpillReadsAcrossHeadAndTail: one read that starts in the head
// and ends in the tail returns both parts in order.
func TestChainSpillReadsAcrossHeadAndTail(t *testing.T) {
	head := &memSpill{b: []byte("0123456789")}
	c := &chainSpill{head: head, base: 6, tail: &memSpill{}} // head bytes past base do not count
	_, _ = c.Write([]byte("abcdef"))
	for _, tc := range []struct {
		off  int64
		n    int
		want string
		err  error
	}{
		{0, 6, "012345", nil},
		{4, 6, "45abcd", nil},
		{6, 6, "abcdef", nil},
		{10, 4, "ef", io.EOF},
	} {
		p := make([]byte, tc.n)
		n, err := c.ReadAt(p, tc.off)
		if string(p[:n]) != tc.want || !errors.Is(err, tc.err) && err != tc.err {
			t.Errorf("ReadAt(%d bytes at %d) = %q, %v; want %q, %v", tc.n, tc.off, p[:n], err, tc.want, tc.err)
		}
	}
}
