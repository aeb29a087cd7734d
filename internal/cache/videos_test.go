package cache_test

import (
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestFile: a video opened as a file has its bytes and digest; a file cut
// short after it was hashed is never served again, even within the time
// File trusts a hash.
func TestFile(t *testing.T) {
	dir := t.TempDir()
	ev := &counts{}
	s, g := open(t, dir, 1<<20, ev)
	v := video{seed: 9, segments: []int{100, 900}}
	var renders atomic.Int32
	if _, _, _, err := fetch(t, g, v, 0, &renders); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		f, ok := s.File(v.id())
		if !ok {
			t.Fatalf("open %d: miss", i)
		}
		b, err := io.ReadAll(f)
		_ = f.Close()
		if err != nil || string(b) != string(v.bytes()) || f.SHA256 != sum(v.bytes()) || f.Size != int64(len(b)) {
			t.Fatalf("open %d: %d bytes, %v, sha256 %s", i, len(b), err, f.SHA256)
		}
	}
	if err := os.Truncate(filepath.Join(dir, v.id()+".mp4"), 500); err != nil {
		t.Fatal(err)
	}
	if f, ok := s.File(v.id()); ok {
		_ = f.Close()
		t.Fatal("a truncated entry was served")
	}
	if _, ok := s.File(v.id()); ok {
		t.Fatal("the truncated entry is still there")
	}
}
