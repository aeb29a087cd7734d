package cache_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/whirl-dev/whirl/internal/cache"
)

// gated renders v, pausing after its first `before` segments until gate is
// closed; canceled records that the render saw its context end.
type gated struct {
	v        video
	before   int
	gate     chan struct{}
	renders  atomic.Int32
	canceled atomic.Bool
}

func newGated(v video, before int) *gated {
	return &gated{v: v, before: before, gate: make(chan struct{})}
}

func (g *gated) render(ctx context.Context, w *cache.Writer) (cache.Timing, error) {
	g.renders.Add(1)
	b := g.v.bytes()
	var at int64
	for i, end := range g.v.ends() {
		if i == g.before {
			select {
			case <-g.gate:
			case <-ctx.Done():
				g.canceled.Store(true)
				return cache.Timing{}, ctx.Err()
			}
		}
		w.Segment(b[at:end])
		at = end
	}
	return cache.Timing{}, nil
}

func newGroup(t *testing.T) (*cache.Group, *counts) {
	ev := &counts{}
	_, g := open(t, filepath.Join(t.TempDir(), "cache"), 1<<30, ev)
	return g, ev
}

func TestSharedRender(t *testing.T) {
	t.Run("five identical requests at once share one render", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, ev := newGroup(t)
			r := newGated(small, 0)
			var readers []*cache.Reader
			sources := map[cache.Source]int{}
			for range 5 {
				rd, src := g.Open(small.id(), 0, r.render)
				readers = append(readers, rd)
				sources[src]++
			}
			close(r.gate)
			var wg sync.WaitGroup
			got := make([][]byte, 5)
			for i, rd := range readers {
				wg.Go(func() {
					defer rd.Close()
					b, err := readAll(t, rd, small.ends())
					if err != nil {
						t.Error(err)
					}
					got[i] = b
				})
			}
			wg.Wait()
			for i, b := range got {
				if !bytes.Equal(b, small.bytes()) {
					t.Fatalf("reader %d got different bytes", i)
				}
			}
			if r.renders.Load() != 1 || sources[cache.Rendered] != 1 || sources[cache.Shared] != 4 || ev.shared.Load() != 4 {
				t.Fatalf("%d renders, sources %v, shared events %d; want 1 render, 1 rendered and 4 shared", r.renders.Load(), sources, ev.shared.Load())
			}
		})
	})
	t.Run("a joiner halfway through gets the whole video", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, _ := newGroup(t)
			r := newGated(small, 2)
			first, _ := g.Open(small.id(), 0, r.render)
			defer first.Close()
			synctest.Wait() // the render now waits halfway
			late, src := g.Open(small.id(), 0, r.render)
			defer late.Close()
			close(r.gate)
			b, err := readAll(t, late, small.ends())
			if err != nil || src != cache.Shared || !bytes.Equal(b, small.bytes()) {
				t.Fatalf("late joiner: source %v, err %v, %d bytes equal %v", src, err, len(b), bytes.Equal(b, small.bytes()))
			}
		})
	})
	t.Run("a reader that never reads does not hold up the render or others", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, _ := newGroup(t)
			r := newGated(small, 0)
			stuck, _ := g.Open(small.id(), 0, r.render)
			reading, _ := g.Open(small.id(), 0, r.render)
			close(r.gate)
			b, err := readAll(t, reading, small.ends())
			reading.Close()
			if err != nil || !bytes.Equal(b, small.bytes()) {
				t.Fatalf("reader beside a stuck one: err %v", err)
			}
			synctest.Wait()
			// Finished and stored while the stuck reader has read nothing.
			again, src := g.Open(small.id(), 0, r.render)
			again.Close()
			if src != cache.Cached {
				t.Fatalf("after the render: source %v, want cached", src)
			}
			b, err = readAll(t, stuck, small.ends())
			stuck.Close()
			if err != nil || !bytes.Equal(b, small.bytes()) {
				t.Fatalf("the stuck reader, reading at last: err %v", err)
			}
		})
	})
	t.Run("the last reader leaving cancels the render and nothing is stored", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, _ := newGroup(t)
			r := newGated(small, 1)
			a, _ := g.Open(small.id(), 0, r.render)
			b, _ := g.Open(small.id(), 0, r.render)
			synctest.Wait()
			a.Close()
			synctest.Wait()
			if r.canceled.Load() {
				t.Fatal("render canceled while a reader remained")
			}
			b.Close()
			synctest.Wait()
			if !r.canceled.Load() {
				t.Fatal("render still running with no reader left")
			}
			r2 := newGated(small, 0)
			close(r2.gate)
			c, src := g.Open(small.id(), 0, r2.render)
			defer c.Close()
			if src != cache.Rendered {
				t.Fatalf("after a canceled render: source %v, want a new render", src)
			}
		})
	})
	t.Run("a failed render fails its readers and is not stored", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			g, _ := newGroup(t)
			boom := errors.New("encoder died")
			fail := func(_ context.Context, w *cache.Writer) (cache.Timing, error) {
				w.Segment(small.bytes()[:small.ends()[0]])
				return cache.Timing{}, boom
			}
			rd, _ := g.Open(small.id(), 0, fail)
			_, err := readAll(t, rd, small.ends())
			rd.Close()
			if !errors.Is(err, boom) {
				t.Fatalf("reader error %v, want the render's", err)
			}
			var renders atomic.Int32
			if _, src, _, _ := fetch(t, g, small, 0, &renders); src != cache.Rendered {
				t.Fatalf("after a failed render: source %v, want a new render", src)
			}
		})
	})
}

// TestResume reads from many offsets of a cold, a shared and a cached
// video: prefix plus resumed bytes are always the whole video.
func TestResume(t *testing.T) {
	full := small.bytes()
	ends := small.ends()
	n := int64(len(full))
	offsets := []int64{0, ends[0] / 2, ends[0], ends[0] + 1, ends[1], ends[1] + 1, rand.Int64N(n), n - 1, n}
	for _, source := range []cache.Source{cache.Rendered, cache.Shared, cache.Cached} {
		for _, off := range offsets {
			synctest.Test(t, func(t *testing.T) {
				g, _ := newGroup(t)
				r := newGated(small, 1)
				var rd *cache.Reader
				var src cache.Source
				switch source {
				case cache.Cached:
					close(r.gate)
					first, _ := g.Open(small.id(), 0, r.render)
					if _, err := readAll(t, first, ends); err != nil {
						t.Fatal(err)
					}
					first.Close()
					rd, src = g.Open(small.id(), off, r.render)
				case cache.Shared:
					first, _ := g.Open(small.id(), 0, r.render)
					defer first.Close()
					synctest.Wait()
					rd, src = g.Open(small.id(), off, r.render)
					close(r.gate)
				default:
					close(r.gate)
					rd, src = g.Open(small.id(), off, r.render)
				}
				defer rd.Close()
				got, err := readAll(t, rd, ends)
				if err != nil || src != source {
					t.Fatalf("offset %d: source %v (want %v), err %v", off, src, source, err)
				}
				if !bytes.Equal(append(full[:off:off], got...), full) {
					t.Fatalf("offset %d from %v: prefix + %d resumed bytes differ from the video", off, source, len(got))
				}
				if res := rd.Result(); res.Size != n || res.SHA256 != sum(full) {
					t.Fatalf("offset %d: result %+v does not describe the whole video", off, res)
				}
			})
		}
		t.Run("past the end", func(t *testing.T) {
			g, _ := newGroup(t)
			var renders atomic.Int32
			if source == cache.Cached {
				if _, _, _, err := fetch(t, g, small, 0, &renders); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, _, err := fetch(t, g, small, n+1, &renders); !errors.Is(err, cache.ErrOutOfRange) {
				t.Fatalf("offset past the end: %v, want ErrOutOfRange", err)
			}
		})
	}
}
