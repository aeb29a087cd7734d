package cache_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/whirl-dev/whirl/internal/cache"
)

// TestDiskFullMidRender fills the disk for real: a child process whose file
// size limit (RLIMIT_FSIZE) is smaller than the video writes it through the
// cache. The write fails part-way, caching turns off, and the render's
// readers still get every byte.
func TestDiskFullMidRender(t *testing.T) {
	if dir := os.Getenv("WHIRL_CACHE_FSIZE_DIR"); dir != "" {
		diskFullChild(t, dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "cache")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDiskFullMidRender$", "-test.v")
	cmd.Env = append(os.Environ(), "WHIRL_CACHE_FSIZE_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("cache directory after the failed write: %v, %v; want empty", ents, err)
	}
}

func diskFullChild(t *testing.T, dir string) {
	limit := int64(len(bigger.bytes()) / 2)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(limit), Max: uint64(limit)}); err != nil {
		t.Fatal(err)
	}
	ev := &counts{}
	s, g := open(t, dir, 1<<30, ev)
	want(t, g, bigger, cache.Rendered)
	want(t, g, bigger, cache.Rendered)
	if s.Enabled() || ev.writeFailures.Load() != 1 {
		t.Fatalf("enabled %v, write failures %d; want off and 1", s.Enabled(), ev.writeFailures.Load())
	}
	var renders atomic.Int32
	if b, _, _, err := fetch(t, g, small, 0, &renders); err != nil || len(b) != len(small.bytes()) {
		t.Fatalf("render after the cache turned off: %v", err)
	}
}
