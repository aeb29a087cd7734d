package cache_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/cache"
)

var (
	small  = video{seed: 1, segments: []int{700, 3000, 70 << 10, 5}}
	other  = video{seed: 2, segments: []int{500, 4000, 4000}}
	third  = video{seed: 3, segments: []int{600, 6000}}
	bigger = video{seed: 4, segments: []int{1000, 200 << 10}}
)

// want fetches v and checks its bytes, source and result.
func want(t *testing.T, g *cache.Group, v video, source cache.Source) {
	t.Helper()
	var renders atomic.Int32
	b, src, res, err := fetch(t, g, v, 0, &renders)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if !bytes.Equal(b, v.bytes()) {
		t.Fatalf("got %d bytes that differ from the video's %d", len(b), len(v.bytes()))
	}
	if src != source {
		t.Fatalf("source %v, want %v", src, source)
	}
	if res.Size != int64(len(b)) || res.SHA256 != sum(b) {
		t.Fatalf("result %+v does not describe the bytes", res)
	}
	if rendered := renders.Load() == 1; rendered != (source == cache.Rendered) {
		t.Fatalf("source %v but render called %d times", source, renders.Load())
	}
}

// alter rewrites an entry's data file on disk.
func alter(t *testing.T, dir string, v video, change func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(dir, v.id()+".mp4")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, change(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStore is the behavioural suite of the on-disk store, through the
// Group that fills and reads it.
func TestStore(t *testing.T) {
	tests := []struct {
		name string
		// max is the store's bound in bytes; 0 means a generous one.
		max int64
		// run drives the store; reopen gives a store on the same directory,
		// as after a restart.
		run func(t *testing.T, dir string, g *cache.Group, ev *counts, reopen func() *cache.Group)
	}{
		{name: "second request is a verified hit with the same bytes, also after a restart", run: func(t *testing.T, dir string, g *cache.Group, ev *counts, reopen func() *cache.Group) {
			want(t, g, small, cache.Rendered)
			want(t, g, small, cache.Cached)
			want(t, reopen(), small, cache.Cached)
			if ev.hits.Load() != 2 || ev.misses.Load() != 1 || ev.writeFailures.Load() != 0 {
				t.Fatalf("hits %d misses %d write failures %d, want 2 1 0", ev.hits.Load(), ev.misses.Load(), ev.writeFailures.Load())
			}
		}},
		{name: "an altered entry is dropped and rendered again", run: func(t *testing.T, dir string, g *cache.Group, ev *counts, _ func() *cache.Group) {
			want(t, g, small, cache.Rendered)
			alter(t, dir, small, func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
			want(t, g, small, cache.Rendered)
			want(t, g, small, cache.Cached)
		}},
		{name: "a truncated entry is dropped and rendered again", run: func(t *testing.T, dir string, g *cache.Group, ev *counts, _ func() *cache.Group) {
			want(t, g, small, cache.Rendered)
			alter(t, dir, small, func(b []byte) []byte { return b[:len(b)-1] })
			want(t, g, small, cache.Rendered)
			want(t, g, small, cache.Cached)
		}},
		{name: "an entry altered while the server was down is never served", run: func(t *testing.T, dir string, g *cache.Group, ev *counts, reopen func() *cache.Group) {
			want(t, g, small, cache.Rendered)
			alter(t, dir, small, func(b []byte) []byte { b[0] ^= 0xff; return b })
			want(t, reopen(), small, cache.Rendered)
		}},
		{name: "least recently used is evicted first, bounded by bytes", max: int64(len(small.bytes()) + len(other.bytes()) + len(third.bytes()) - 1), run: func(t *testing.T, dir string, g *cache.Group, ev *counts, _ func() *cache.Group) {
			want(t, g, small, cache.Rendered)
			want(t, g, other, cache.Rendered)
			want(t, g, small, cache.Cached) // other is now the least recently used
			want(t, g, third, cache.Rendered)
			if ev.evictions.Load() != 1 {
				t.Fatalf("%d evictions, want 1", ev.evictions.Load())
			}
			if n := int64(len(small.bytes()) + len(third.bytes())); ev.bytes.Load() != n {
				t.Fatalf("whirl_cache_bytes %d, want %d", ev.bytes.Load(), n)
			}
			want(t, g, small, cache.Cached)
			want(t, g, third, cache.Cached)
			want(t, g, other, cache.Rendered)
		}},
		{name: "recency survives a restart", max: int64(len(small.bytes()) + len(other.bytes()) + len(third.bytes()) - 1), run: func(t *testing.T, dir string, g *cache.Group, ev *counts, reopen func() *cache.Group) {
			want(t, g, small, cache.Rendered)
			want(t, g, other, cache.Rendered)
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(filepath.Join(dir, other.id()+".mp4"), old, old); err != nil {
				t.Fatal(err)
			}
			g = reopen()
			want(t, g, third, cache.Rendered)
			want(t, g, small, cache.Cached)
			want(t, g, other, cache.Rendered)
		}},
		{name: "a video larger than the bound is served but not stored; caching stays on", max: int64(len(bigger.bytes()) - 1), run: func(t *testing.T, dir string, g *cache.Group, ev *counts, _ func() *cache.Group) {
			want(t, g, bigger, cache.Rendered)
			want(t, g, bigger, cache.Rendered)
			want(t, g, small, cache.Rendered)
			want(t, g, small, cache.Cached)
			if ev.writeFailures.Load() != 0 {
				t.Fatal("an oversized video counted as a write failure")
			}
		}},
		{name: "leftovers of interrupted writes are deleted at start", run: func(t *testing.T, dir string, g *cache.Group, ev *counts, reopen func() *cache.Group) {
			want(t, g, small, cache.Rendered)
			for _, name := range []string{"tmp-" + small.id() + "-123", other.id() + ".mp4"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			reopen()
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 2 {
				t.Fatalf("%d files left, want the entry's 2: %v", len(ents), ents)
			}
		}},
		{name: "a directory that disappears turns caching off; renders go on", run: func(t *testing.T, dir string, g *cache.Group, ev *counts, _ func() *cache.Group) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			want(t, g, small, cache.Rendered)
			want(t, g, small, cache.Rendered)
			if ev.writeFailures.Load() != 1 {
				t.Fatalf("write failures %d, want 1", ev.writeFailures.Load())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			max := tt.max
			if max == 0 {
				max = 1 << 30
			}
			ev := &counts{}
			_, g := open(t, dir, max, ev)
			tt.run(t, dir, g, ev, func() *cache.Group {
				_, g := open(t, dir, max, ev)
				return g
			})
		})
	}
}

// TestStoreOff covers stores that never write: turned off, or whose
// directory cannot be made. Every render still succeeds.
func TestStoreOff(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		dir           string
		max           int64
		writeFailures int64
	}{
		{"cache-max-bytes 0", filepath.Join(t.TempDir(), "unused"), 0, 0},
		{"directory under a regular file", filepath.Join(file, "cache"), 1 << 30, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &counts{}
			s, g := open(t, tt.dir, tt.max, ev)
			want(t, g, small, cache.Rendered)
			want(t, g, small, cache.Rendered)
			if s.Enabled() || ev.writeFailures.Load() != tt.writeFailures {
				t.Fatalf("enabled %v, write failures %d; want off and %d", s.Enabled(), ev.writeFailures.Load(), tt.writeFailures)
			}
			if _, err := os.Stat(tt.dir); err == nil {
				t.Fatal("the directory was created")
			}
		})
	}
}

// TestStoreUnwritableDirectory needs a user that permissions apply to.
func TestStoreUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("permissions do not bind root; TestStoreOff and the size-limit test cover unwritable caches")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	ev := &counts{}
	s, g := open(t, dir, 1<<30, ev)
	want(t, g, small, cache.Rendered)
	want(t, g, small, cache.Rendered)
	if s.Enabled() || ev.writeFailures.Load() != 1 {
		t.Fatalf("enabled %v, write failures %d; want off and 1", s.Enabled(), ev.writeFailures.Load())
	}
}
