package cache

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"time"
)

// maxPending bounds the facts Describe keeps for videos not stored yet
// (renders that fail or are cancelled never take theirs).
const maxPending = 4096

// Describe records facts about the video id (the caller's own encoding,
// opaque here) to be stored in its entry's metadata, and carried to the
// shared tier with it. Call it before the video's render starts: the
// entry committed at the render's end takes them. An entry already stored
// without facts gets them now.
func (s *Store) Describe(id string, info []byte) {
	if !ValidID(id) || len(info) == 0 || !json.Valid(info) {
		return
	}
	s.mu.Lock()
	off := s.off
	_, stored := s.entries[id]
	if !off && !stored {
		if len(s.pending) >= maxPending {
			clear(s.pending)
		}
		s.pending[id] = json.RawMessage(info)
	}
	s.mu.Unlock()
	if off || !stored {
		return
	}
	m, err := s.readMeta(id)
	if err != nil || m.Info != nil {
		return
	}
	m.Info = json.RawMessage(info)
	s.writeMeta(id, m)
	s.mu.Lock()
	delete(s.verified, id) // it holds the metadata without the facts
	s.mu.Unlock()
}

// takePending removes and returns the facts Describe kept for id.
func (s *Store) takePending(id string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := s.pending[id]
	delete(s.pending, id)
	return info
}

// writeMeta replaces an entry's metadata file atomically; failure leaves
// the old one, which is as good but for the facts.
func (s *Store) writeMeta(id string, m meta) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	tmp := filepath.Join(s.dir, tempPrefix+id+metaExt)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		_ = os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, s.metaPath(id)); err != nil {
		_ = os.Remove(tmp)
	}
}

// Video is a finished video read from a tier of the store.
type Video struct {
	// Reader reads it from the offset asked for; the caller must Close it.
	*Reader
	// Info is what Describe recorded about it; nil if nothing was.
	Info json.RawMessage
	// Size and SHA256 describe the whole video.
	Size   int64
	SHA256 string
}

// Video opens the finished video id for reading from offset: a verified
// local entry, or one fetched from the shared tier (which fills the local
// one). It reports false when no tier holds it. It never renders.
func (s *Store) Video(id string, offset int64) (Video, bool) {
	e, ok := s.Lookup(id)
	if !ok {
		return Video{}, false
	}
	return Video{Reader: &Reader{src: e, pos: offset}, Info: e.info, Size: e.size, SHA256: e.sum}, true
}

// File is a verified finished video as a file, for serving it whole or in
// ranges.
type File struct {
	// File is open for reading at its start; the caller must Close it. It
	// stays readable if the entry is evicted meanwhile.
	*os.File
	Size   int64
	SHA256 string
	Info   json.RawMessage
}

// reverifyAfter is how long File trusts an entry it hashed: a player
// seeking through a video asks for many ranges in a row, and hashing the
// whole file for each would cost far more than sending the range.
const reverifyAfter = 30 * time.Second

// File opens the finished video id as Video does: from the local tier, or
// from the shared one through it. An entry hashed less than reverifyAfter
// ago is opened without hashing it again, its length still checked.
func (s *Store) File(id string) (File, bool) {
	if f, ok := s.recentFile(id); ok {
		return f, true
	}
	e, ok := s.Lookup(id)
	if !ok {
		return File{}, false
	}
	// Hashing read it to the end.
	if _, err := e.file.Seek(0, io.SeekStart); err != nil {
		_ = e.file.Close()
		return File{}, false
	}
	s.mu.Lock()
	if _, indexed := s.entries[id]; indexed {
		s.verified[id] = verifiedEntry{at: time.Now(), m: meta{Size: e.size, SHA256: e.sum, Info: e.info}}
	}
	s.mu.Unlock()
	return File{File: e.file, Size: e.size, SHA256: e.sum, Info: e.info}, true
}

// verifiedEntry is an entry File hashed at at, with its metadata.
type verifiedEntry struct {
	at time.Time
	m  meta
}

// recentFile opens id's entry if File hashed it recently.
func (s *Store) recentFile(id string) (File, bool) {
	s.mu.Lock()
	v, ok := s.verified[id]
	if el, indexed := s.entries[id]; ok && indexed && time.Since(v.at) < reverifyAfter {
		s.lru.MoveToFront(el)
	} else {
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return File{}, false
	}
	m := v.m
	f, err := os.Open(s.dataPath(id))
	if err != nil {
		return File{}, false
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != m.Size {
		_ = f.Close()
		return File{}, false
	}
	s.events.CacheHit()
	return File{File: f, Size: m.Size, SHA256: m.SHA256, Info: m.Info}, true
}
