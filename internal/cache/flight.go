package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"sync"
	"time"
)

// Source says where a Reader's bytes come from.
type Source int

const (
	// Rendered: this request started the render.
	Rendered Source = iota + 1
	// Cached: a verified entry of the Store; nothing renders.
	Cached
	// Shared: this request joined a render that was already running.
	Shared
)

// Timing is what a render reports about itself, passed on to every reader.
type Timing struct {
	// Render is time spent drawing frames; Encode is ffmpeg's wall time.
	Render, Encode time.Duration
}

// RenderFunc produces one video into w, one complete segment at a time, and
// returns when the last segment is written or on the first error. It must
// stop when ctx ends.
type RenderFunc func(ctx context.Context, w *Writer) (Timing, error)

// Group runs at most one render per video id at a time and lets every
// request for that id read it: from the Store when it is finished, or from
// the render in flight, from its first byte on, each reader at its own pace.
//
// A render writes every segment to a spill file (the Store's temporary file
// for the entry when caching is on, else an unlinked temporary file, else
// memory when no file can be written) and readers read it back: the render
// never waits for a reader, and memory does not grow with slow readers. The
// render goes on while at least one reader is open and is cancelled, and
// not stored, when the last one closes before it finishes.
type Group struct {
	store *Store
	// base is the parent of every render's context: canceling it stops them.
	base context.Context

	mu      sync.Mutex
	flights map[string]*flight
}

// NewGroup returns a Group that stores finished renders in store; renders
// run under base's values and end with it.
func NewGroup(base context.Context, store *Store) *Group {
	return &Group{store: store, base: base, flights: map[string]*flight{}}
}

// Open returns a reader of the video id starting at byte offset, and where
// its bytes come from: a verified cache entry, a render of id already in
// flight, or a new render running render. Reading past the end of the video
// fails with ErrOutOfRange once its length is known. The caller must Close
// the reader.
func (g *Group) Open(id string, offset int64, render RenderFunc) (*Reader, Source) {
	g.mu.Lock()
	r, ok := g.joinLocked(id, offset)
	g.mu.Unlock()
	if ok {
		return r, Shared
	}
	if e, ok := g.store.Lookup(id); ok {
		return &Reader{src: e, pos: offset}, Cached
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// A render may have started between the two looks.
	if r, ok := g.joinLocked(id, offset); ok {
		return r, Shared
	}
	return &Reader{src: g.start(id, render), pos: offset}, Rendered
}

// joinLocked adds a reader to id's render in flight, if there is one.
func (g *Group) joinLocked(id string, offset int64) (*Reader, bool) {
	f, ok := g.flights[id]
	if !ok {
		return nil, false
	}
	f.subs++
	g.store.events.RenderShared()
	return &Reader{src: f, pos: offset}, true
}

// start begins a render with one reader; g.mu is held.
func (g *Group) start(id string, render RenderFunc) *flight {
	ctx, cancel := context.WithCancel(g.base)
	f := &flight{group: g, id: id, cancel: cancel, subs: 1, hash: sha256.New(), wake: make(chan struct{}), stopped: make(chan struct{})}
	if file, ok := g.store.create(id); ok {
		f.entry, f.spill = file, file
	} else {
		f.spill = anonymousSpill()
	}
	g.flights[id] = f
	go f.run(ctx, render)
	return f
}

// anonymousSpill is an unlinked temporary file, or memory if none can be
// made.
func anonymousSpill() spill {
	file, err := os.CreateTemp("", "whirl-spill-*")
	if err != nil {
		return &memSpill{}
	}
	_ = os.Remove(file.Name())
	return file
}

// spill holds a render's bytes for its readers. *os.File is one.
type spill interface {
	io.ReaderAt
	io.Writer
}

// flight is one render in progress and its readers.
type flight struct {
	group  *Group
	id     string
	cancel context.CancelFunc
	// stopped is closed once the render function has returned: its
	// encoders have exited and its outcome is published.
	stopped chan struct{}
	// Written by the render goroutine only.
	hash  hash.Hash
	entry *os.File // the Store's temporary file, nil when not caching

	// Guarded by group.mu.
	subs     int
	finished bool

	mu       sync.Mutex
	spill    spill
	retired  []io.Closer // spills replaced after a write error, closed at the end
	written  int64
	ends     []int64
	wake     chan struct{} // closed and replaced on every change
	done     bool
	err      error
	sum      string
	timing   Timing
	progress Progress
}

// run renders, publishes the outcome, stores the video if it is complete,
// and only then lets new requests start another render of the same id.
func (f *flight) run(ctx context.Context, render RenderFunc) {
	timing, err := render(ctx, &Writer{f: f})
	f.mu.Lock()
	m := meta{Size: f.written, SHA256: hex.EncodeToString(f.hash.Sum(nil)), Segments: f.ends}
	f.mu.Unlock()
	// Stored before readers see the end: whoever has the whole video can
	// count on the next request being a hit.
	if f.entry != nil {
		if err == nil {
			f.group.store.commit(f.entry, f.id, m)
		} else {
			_ = os.Remove(f.entry.Name())
		}
	}
	f.mu.Lock()
	f.done, f.err, f.timing, f.sum = true, err, timing, m.SHA256
	f.broadcastLocked()
	f.mu.Unlock()
	close(f.stopped)

	g := f.group
	g.mu.Lock()
	if g.flights[f.id] == f {
		delete(g.flights, f.id)
	}
	f.finished = true
	last := f.subs == 0
	g.mu.Unlock()
	f.cancel()
	if last {
		f.closeFiles()
	}
}

func (f *flight) broadcastLocked() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// leave drops one reader; the last one to leave an unfinished render
// cancels it, and gets back the channel closed when the render has stopped
// (others get a closed channel: nothing they kept running still runs).
func (f *flight) leave() <-chan struct{} {
	g := f.group
	g.mu.Lock()
	f.subs--
	last := f.subs == 0
	if last && !f.finished && g.flights[f.id] == f {
		delete(g.flights, f.id)
	}
	finished := f.finished
	g.mu.Unlock()
	switch {
	case last && finished:
		f.closeFiles()
	case last:
		// run closes the files once the render has stopped.
		f.cancel()
		return f.stopped
	}
	return closedChan()
}

// closedChan returns a closed channel: nothing to wait for.
func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (f *flight) closeFiles() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.spill.(io.Closer); ok {
		_ = c.Close()
	}
	for _, c := range f.retired {
		_ = c.Close()
	}
}

// append adds one complete segment. A spill file that fails to take it
// keeps what it holds, and memory takes the rest: the render goes on, only
// the caching stops.
func (f *flight) append(data []byte) {
	f.hash.Write(data)
	f.mu.Lock()
	sp, written := f.spill, f.written
	f.mu.Unlock()
	if _, err := sp.Write(data); err != nil {
		tail := &memSpill{}
		_, _ = tail.Write(data)
		if f.entry != nil {
			_ = os.Remove(f.entry.Name())
			f.entry = nil
			f.group.store.disable("write a cache file", err)
		}
		f.mu.Lock()
		if c, ok := sp.(io.Closer); ok {
			f.retired = append(f.retired, c)
		}
		f.spill = &chainSpill{head: sp, base: written, tail: tail}
		f.mu.Unlock()
	}
	f.mu.Lock()
	f.written += int64(len(data))
	f.ends = append(f.ends, f.written)
	f.broadcastLocked()
	f.mu.Unlock()
}

func (f *flight) snapshot() state {
	f.mu.Lock()
	defer f.mu.Unlock()
	return state{
		spill: f.spill, written: f.written, ends: f.ends, wake: f.wake,
		done: f.done, err: f.err, sum: f.sum, timing: f.timing, progress: f.progress,
	}
}

func (f *flight) release() <-chan struct{} { return f.leave() }

func (f *flight) ended() <-chan struct{} { return f.stopped }

// Progress is how far a render in flight has come.
type Progress struct {
	// QueuePosition is the 1-based place in a queue the render waits in; 0
	// once it runs.
	QueuePosition int
	// Frames is the number of frames done.
	Frames int
}

// Writer is a render's handle on its flight.
type Writer struct{ f *flight }

// Segment appends one complete segment (the init segment or a whole
// fragment) to the video. It never blocks on readers.
func (w *Writer) Segment(data []byte) { w.f.append(data) }

// SetProgress publishes how far the render has come. Readers waiting for
// data are woken when the queue position changes.
func (w *Writer) SetProgress(p Progress) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	moved := p.QueuePosition != w.f.progress.QueuePosition
	w.f.progress = p
	if moved {
		w.f.broadcastLocked()
	}
}

// chainSpill is a spill that failed to take more: its first base bytes
// stay where they are, the rest goes to memory.
type chainSpill struct {
	head io.ReaderAt
	base int64
	tail *memSpill
}

func (c *chainSpill) Write(p []byte) (int, error) { return c.tail.Write(p) }

func (c *chainSpill) ReadAt(p []byte, off int64) (int, error) {
	if off >= c.base {
		return c.tail.ReadAt(p, off-c.base)
	}
	n, err := c.head.ReadAt(p[:min(int64(len(p)), c.base-off)], off)
	if err != nil || n == len(p) {
		return n, err
	}
	m, err := c.tail.ReadAt(p[n:], 0)
	return n + m, err
}

// memSpill is the spill of last resort: memory, bounded by the size of one
// video (itself bounded by the server's pixel budget).
type memSpill struct {
	mu sync.RWMutex
	b  []byte
}

func (m *memSpill) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b = append(m.b, p...)
	return len(p), nil
}

func (m *memSpill) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
