package cache_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/cache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counts records the cache's events.
type counts struct{ hits, misses, evictions, writeFailures, shared, bytes atomic.Int64 }

func (c *counts) CacheHit()          { c.hits.Add(1) }
func (c *counts) CacheMiss()         { c.misses.Add(1) }
func (c *counts) CacheEvicted()      { c.evictions.Add(1) }
func (c *counts) CacheBytes(n int64) { c.bytes.Store(n) }
func (c *counts) CacheWriteFailed()  { c.writeFailures.Add(1) }
func (c *counts) RenderShared()      { c.shared.Add(1) }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// video is a deterministic test video: segments of the given sizes, each
// byte derived from the seed and its offset.
type video struct {
	seed     byte
	segments []int
}

func (v video) id() string {
	h := sha256.Sum256(append([]byte{v.seed}, byte(len(v.segments))))
	return hex.EncodeToString(h[:])
}

func (v video) bytes() []byte {
	var b []byte
	for _, n := range v.segments {
		for range n {
			b = append(b, v.seed+byte(len(b)*7))
		}
	}
	return b
}

func (v video) ends() []int64 {
	var ends []int64
	var at int64
	for _, n := range v.segments {
		at += int64(n)
		ends = append(ends, at)
	}
	return ends
}

// render writes v's segments; renders counts the calls.
func (v video) render(renders *atomic.Int32) cache.RenderFunc {
	return func(ctx context.Context, w *cache.Writer) (cache.Timing, error) {
		renders.Add(1)
		b := v.bytes()
		var at int64
		for _, end := range v.ends() {
			if err := ctx.Err(); err != nil {
				return cache.Timing{}, err
			}
			w.Segment(b[at:end])
			at = end
		}
		return cache.Timing{Render: 1, Encode: 2}, nil
	}
}

// readAll reads r to its end, checking that chunks are contiguous, never
// cross a segment end and mark every segment end they reach.
func readAll(t *testing.T, r *cache.Reader, ends []int64) ([]byte, error) {
	t.Helper()
	var got []byte
	isEnd := map[int64]bool{}
	for _, e := range ends {
		isEnd[e] = true
	}
	start := r.Offset()
	for {
		c, wait, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return got, nil
			}
			return got, err
		}
		if wait != nil {
			<-wait
			continue
		}
		if c.Offset != start+int64(len(got)) {
			t.Fatalf("chunk at %d, want %d", c.Offset, start+int64(len(got)))
		}
		end := c.Offset + int64(len(c.Data))
		for o := c.Offset + 1; o < end; o++ {
			if isEnd[o] {
				t.Fatalf("chunk [%d,%d) crosses the segment end %d", c.Offset, end, o)
			}
		}
		if c.SegmentEnd != isEnd[end] {
			t.Fatalf("chunk ending at %d: SegmentEnd %v, want %v", end, c.SegmentEnd, isEnd[end])
		}
		got = append(got, c.Data...)
	}
}

func open(t *testing.T, dir string, maxBytes int64, ev *counts) (*cache.Store, *cache.Group) {
	t.Helper()
	s := cache.Open(dir, maxBytes, quiet(), ev)
	return s, cache.NewGroup(t.Context(), s)
}

// fetch opens v at offset and reads it whole.
func fetch(t *testing.T, g *cache.Group, v video, offset int64, renders *atomic.Int32) ([]byte, cache.Source, cache.Result, error) {
	t.Helper()
	r, src := g.Open(v.id(), offset, v.render(renders))
	defer r.Close()
	b, err := readAll(t, r, v.ends())
	return b, src, r.Result(), err
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
