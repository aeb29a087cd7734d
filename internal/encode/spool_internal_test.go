package encode

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/whirl-dev/whirl/internal/fmp4"
)

// TestSpool: output held while waiting comes back in order, from memory up
// to the bound and from the temporary file past it, then later output goes
// straight through; the file is gone from the directory at once.
func TestSpool(t *testing.T) {
	for _, limit := range []int{0, 5, 1 << 20} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			dir := t.TempDir()
			sp := newSpool(dir, limit)
			defer sp.close()
			var want []fmp4.Segment
			for i := range 6 {
				seg := fmp4.Segment{Init: i == 0, Data: bytes.Repeat([]byte{byte(i)}, i+1), Frames: i}
				want = append(want, seg)
				if err := sp.put(seg); err != nil {
					t.Fatal(err)
				}
			}
			if names, _ := os.ReadDir(dir); len(names) != 0 {
				t.Errorf("spill file left in the directory: %v", names)
			}
			var got []fmp4.Segment
			live := func(s fmp4.Segment) error { got = append(got, s); return nil }
			if err := sp.release(live); err != nil {
				t.Fatal(err)
			}
			last := fmp4.Segment{Data: []byte("after"), Frames: 9}
			want = append(want, last)
			if err := sp.put(last); err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, want, func(a, b fmp4.Segment) bool {
				return a.Init == b.Init && a.Frames == b.Frames && bytes.Equal(a.Data, b.Data)
			}) {
				t.Errorf("got %v, want %v", got, want)
			}
			// 21 bytes were held; what did not fit the bound was spilled
			if spilled, wantSpill := sp.Spilled(), int64(21-memFit(limit)); spilled != wantSpill {
				t.Errorf("spilled %d bytes, want %d", spilled, wantSpill)
			}
		})
	}
}

// memFit is how many of the bytes 1+2+…+6 fit in memory under limit, in
// order, before the first one that does not.
func memFit(limit int) int {
	n := 0
	for i := 1; i <= 6 && n+i <= limit; i++ {
		n += i
	}
	return n
}

// TestSpoolReleaseError: the stitcher's error while replaying is returned.
func TestSpoolReleaseError(t *testing.T) {
	sp := newSpool(t.TempDir(), 0)
	defer sp.close()
	if err := sp.put(fmp4.Segment{Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := sp.release(func(fmp4.Segment) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}
