package encode

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/whirl-dev/whirl/internal/fmp4"
)

// DefaultSpoolMemory is how many bytes of a waiting span's output a
// planned encode keeps in memory before it spills the rest to a
// temporary file: a 5 s span of 720×720 at CRF 23 is ~0.3 MB, a 1080p
// one a few MB.
const DefaultSpoolMemory = 4 << 20

// spool holds the output of a span that runs ahead of its turn,
// in order: in memory up to a bound, then in an unlinked temporary file.
// When its turn comes, release replays it to the stitcher and makes later
// output go straight there. put blocks while release replays, so the
// order holds.
type spool struct {
	dir   string // for the temporary file; "" = os.TempDir()
	limit int    // bytes kept in memory

	mu      sync.Mutex
	live    func(fmp4.Segment) error // set by release
	mem     []fmp4.Segment
	memSize int
	file    *os.File      // spilled segments, after mem
	spilled []spilledMeta // what file holds, in order
	written int64         // bytes written to file
}

type spilledMeta struct {
	init   bool
	frames int
	size   int
}

func newSpool(dir string, limit int) *spool {
	return &spool{dir: dir, limit: limit}
}

// put is the span encoder's sink.
func (s *spool) put(seg fmp4.Segment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live != nil {
		return s.live(seg)
	}
	if s.file == nil && s.memSize+len(seg.Data) <= s.limit {
		s.mem = append(s.mem, seg)
		s.memSize += len(seg.Data)
		return nil
	}
	return s.spill(seg)
}

// spill appends seg to the temporary file, creating it on first use.
func (s *spool) spill(seg fmp4.Segment) error {
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "whirl-span-*")
		if err != nil {
			return fmt.Errorf("encode: spilling a waiting span's output: %w", err)
		}
		// Unlinked at once: the space is freed when it is closed, however
		// the process ends.
		_ = os.Remove(f.Name())
		s.file = f
	}
	if _, err := s.file.Write(seg.Data); err != nil {
		return fmt.Errorf("encode: spilling a waiting span's output: %w", err)
	}
	s.spilled = append(s.spilled, spilledMeta{init: seg.Init, frames: seg.Frames, size: len(seg.Data)})
	s.written += int64(len(seg.Data))
	return nil
}

// release replays what is held to live, then passes every later put
// straight to it.
func (s *spool) release(live func(fmp4.Segment) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.mem {
		if err := live(seg); err != nil {
			return err
		}
	}
	s.mem, s.memSize = nil, 0
	if s.file != nil {
		if err := s.replay(live); err != nil {
			return err
		}
	}
	s.live = live
	return nil
}

// replay reads the spilled segments back in order.
func (s *spool) replay(live func(fmp4.Segment) error) error {
	r := io.NewSectionReader(s.file, 0, s.written)
	for _, m := range s.spilled {
		data := make([]byte, m.size)
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("encode: reading a waiting span's output back: %w", err)
		}
		if err := live(fmp4.Segment{Init: m.init, Data: data, Frames: m.frames}); err != nil {
			return err
		}
	}
	s.spilled = nil
	return s.closeFile()
}

// Spilled is how many bytes went to the temporary file.
func (s *spool) Spilled() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// close drops whatever is still held.
func (s *spool) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mem = nil
	_ = s.closeFile()
}

func (s *spool) closeFile() error {
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}
