// Package cache keeps finished videos on local disk under their content
// address (video_id) and lets requests for a video that is still rendering
// join that render instead of starting another.
//
// A Store is the disk half: entries are written to a temporary file, checked
// against the SHA-256 the producer computed, then renamed into place, with
// their length, digest and segment boundaries in a small JSON file beside
// them. Every hit is re-hashed before its bytes are trusted; a truncated or
// altered entry is dropped. Entries survive restarts and are evicted least
// recently used first, bounded by bytes. A Store that cannot write (full
// disk, read-only, permissions) turns itself off with a warning: callers
// never fail because of the cache.
//
// A Group is the in-flight half: see Group.
//
// Nothing here knows gRPC or protobuf.
package cache

import (
	"bytes"
	"cmp"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	dataExt = ".mp4"
	metaExt = ".json"
	// tempPrefix marks files being written; Open deletes leftovers.
	tempPrefix = "tmp-"
)

// Events receives what the cache does, for metrics. Every method must be
// cheap and safe for concurrent use.
type Events interface {
	CacheHit()
	CacheMiss()
	CacheEvicted()
	// CacheBytes reports the bytes held by committed entries after a change.
	CacheBytes(n int64)
	// CacheWriteFailed reports that the cache turned itself off after a
	// failed write.
	CacheWriteFailed()
	// RenderShared reports a request that joined a render already running.
	RenderShared()
}

type noEvents struct{}

func (noEvents) CacheHit()         {}
func (noEvents) CacheMiss()        {}
func (noEvents) CacheEvicted()     {}
func (noEvents) CacheBytes(int64)  {}
func (noEvents) CacheWriteFailed() {}
func (noEvents) RenderShared()     {}

// meta is what is stored beside an entry's bytes.
type meta struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Segments are the end offsets of the runs of boxes a player can consume
	// (the init segment, then each fragment), ascending; the last is Size.
	Segments []int64 `json:"segments"`
	// Info is what the caller recorded about the video (Describe), opaque
	// here; absent when it was never told.
	Info json.RawMessage `json:"info,omitempty"`
}

// Store is a content-addressed, size-bounded store of finished videos in one
// directory. It is safe for concurrent use.
type Store struct {
	dir      string
	maxBytes int64
	logger   *slog.Logger
	events   Events

	mu      sync.Mutex
	off     bool                     // disabled after a write failure, or maxBytes 0
	entries map[string]*list.Element // id → element of lru (value: *indexed)
	lru     *list.List               // front: most recently used
	bytes   int64
	// pending holds Describe's facts for videos not stored yet; commit
	// takes them.
	pending map[string]json.RawMessage
	// verified holds, for File, the entries hashed lately: when, and
	// their metadata.
	verified map[string]verifiedEntry

	// shared is the second tier (nil: none); see SetShared.
	shared *SharedTier
}

type indexed struct {
	id   string
	size int64
}

// Open opens (creating it if needed) a store in dir holding at most maxBytes
// of entries; maxBytes 0 gives a store that is always off. Entries left by a
// previous run are indexed by their files' modification times; leftovers of
// interrupted writes are deleted. An empty dir also gives a store that is
// always off. A directory that cannot be created or read
// gives a store that is off, with a warning: never an error.
func Open(dir string, maxBytes int64, logger *slog.Logger, events Events) *Store {
	s := &Store{
		dir: dir, maxBytes: maxBytes, logger: cmp.Or(logger, slog.Default()), events: events,
		entries: map[string]*list.Element{}, lru: list.New(), off: maxBytes <= 0 || dir == "",
		pending: map[string]json.RawMessage{}, verified: map[string]verifiedEntry{},
	}
	if s.events == nil {
		s.events = noEvents{}
	}
	if s.off {
		return s
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.disable("create the cache directory", err)
		return s
	}
	if err := s.load(); err != nil {
		s.disable("read the cache directory", err)
		return s
	}
	s.mu.Lock()
	s.evictLocked()
	s.mu.Unlock()
	s.events.CacheBytes(s.Bytes())
	return s
}

// load indexes the entries on disk, oldest use first.
func (s *Store) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	type found struct {
		id   string
		size int64
		used time.Time
	}
	var all []found
	for _, de := range des {
		name := de.Name()
		id, isMeta := strings.CutSuffix(name, metaExt)
		switch {
		case strings.HasPrefix(name, tempPrefix):
			_ = os.Remove(filepath.Join(s.dir, name))
		case isMeta && ValidID(id):
			m, err := s.readMeta(id)
			fi, statErr := os.Stat(s.dataPath(id))
			if err != nil || statErr != nil || fi.Size() != m.Size {
				s.remove(id)
				continue
			}
			all = append(all, found{id, m.Size, fi.ModTime()})
		}
	}
	slices.SortFunc(all, func(a, b found) int { return a.used.Compare(b.used) })
	for _, f := range all {
		s.entries[f.id] = s.lru.PushFront(&indexed{f.id, f.size})
		s.bytes += f.size
	}
	// Data without metadata is a commit cut short.
	for _, de := range des {
		if id, ok := strings.CutSuffix(de.Name(), dataExt); ok && ValidID(id) && s.entries[id] == nil {
			_ = os.Remove(filepath.Join(s.dir, de.Name()))
		}
	}
	return nil
}

// Entry is a verified cached video, open for reading.
type Entry struct {
	file     *os.File
	size     int64
	sum      string
	segments []int64
	info     json.RawMessage
}

// Lookup returns the entry for id after checking that its bytes still hash to
// the stored digest; a missing, truncated or altered entry is a miss (and the
// bad entry is deleted). The caller must Close the entry.
func (s *Store) Lookup(id string) (*Entry, bool) {
	e, ok := s.lookup(id)
	if !ok && s.shared != nil {
		e, ok = s.fetchShared(id)
	}
	if ok {
		s.events.CacheHit()
	} else {
		s.events.CacheMiss()
	}
	return e, ok
}

func (s *Store) lookup(id string) (*Entry, bool) {
	s.mu.Lock()
	el, ok := s.entries[id]
	if ok {
		s.lru.MoveToFront(el)
	}
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	e, err := s.verify(id)
	if err != nil {
		s.logger.Warn("cache entry failed verification; dropped", "video_id", id, "err", err)
		s.drop(id)
		return nil, false
	}
	// The modification time carries recency across restarts.
	now := time.Now()
	_ = os.Chtimes(s.dataPath(id), now, now)
	return e, true
}

// verify opens an entry and checks its length and digest.
func (s *Store) verify(id string) (*Entry, error) {
	m, err := s.readMeta(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.dataPath(id))
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	switch {
	case err != nil:
	case n != m.Size:
		err = fmt.Errorf("%d bytes on disk, %d recorded", n, m.Size)
	case hex.EncodeToString(h.Sum(nil)) != m.SHA256:
		err = errors.New("content does not match its SHA-256")
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &Entry{file: f, size: m.Size, sum: m.SHA256, segments: m.Segments, info: m.Info}, nil
}

func (s *Store) readMeta(id string) (meta, error) {
	var m meta
	b, err := os.ReadFile(s.metaPath(id))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	return m, m.check()
}

// check reports metadata that cannot describe a stored video.
func (m meta) check() error {
	if m.Size < 0 || len(m.Segments) == 0 || m.Segments[len(m.Segments)-1] != m.Size || !slices.IsSorted(m.Segments) || !ValidID(m.SHA256) {
		return errors.New("malformed metadata")
	}
	return nil
}

// create opens a temporary file in the store for a video being written, or
// reports that the store is off.
func (s *Store) create(id string) (*os.File, bool) {
	s.mu.Lock()
	off := s.off
	s.mu.Unlock()
	if off {
		return nil, false
	}
	f, err := os.CreateTemp(s.dir, tempPrefix+id+"-*")
	if err != nil {
		s.disable("create a cache file", err)
		return nil, false
	}
	return f, true
}

// commit checks that the temporary file f holds exactly the bytes whose
// SHA-256 the producer computed, then renames it into place as id's entry.
// On any failure f is removed and the entry is not stored. It does not close f.
func (s *Store) commit(f *os.File, id string, m meta) {
	if m.Info == nil {
		m.Info = s.takePending(id)
	}
	if s.store(f, id, m) && s.shared != nil {
		s.shared.upload(id, s.dataPath(id), m)
	}
}

// store is commit without the upload: it reports whether the entry is
// now in the store.
func (s *Store) store(f *os.File, id string, m meta) bool {
	tmp := f.Name()
	if err := s.commitFile(f, id, m); err != nil {
		_ = os.Remove(tmp)
		if !errors.Is(err, errNotStored) {
			s.disable("write a cache entry", err)
		}
		return false
	}
	s.mu.Lock()
	if el, ok := s.entries[id]; ok {
		s.bytes -= el.Value.(*indexed).size
		s.lru.Remove(el)
	}
	s.entries[id] = s.lru.PushFront(&indexed{id, m.Size})
	s.bytes += m.Size
	s.evictLocked()
	n := s.bytes
	s.mu.Unlock()
	s.events.CacheBytes(n)
	return true
}

// errNotStored is a commit skipped on purpose, not a failing disk.
var errNotStored = errors.New("not stored")

func (s *Store) commitFile(f *os.File, id string, m meta) error {
	if m.Size > s.maxBytes {
		return errNotStored
	}
	// No fsync: a crash may lose or truncate an entry, but every hit is
	// verified, so that costs a render, never a corrupt video; and an fsync
	// on a busy disk would hold every reader's trailer for seconds.
	h := sha256.New()
	if n, err := io.Copy(h, io.NewSectionReader(f, 0, m.Size+1)); err != nil || n != m.Size {
		return cmp.Or(err, fmt.Errorf("cache file holds %d bytes, the video %d", n, m.Size))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return fmt.Errorf("cache file's SHA-256 %s is not the video's %s", got, m.SHA256)
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	metaTmp := s.metaPath(id) + ".tmp"
	mt := filepath.Join(s.dir, tempPrefix+filepath.Base(metaTmp))
	if err := os.WriteFile(mt, mb, 0o644); err != nil {
		return err
	}
	// Data first: a crash between the renames leaves data without metadata,
	// which Open deletes.
	if err := os.Rename(f.Name(), s.dataPath(id)); err != nil {
		_ = os.Remove(mt)
		return err
	}
	if err := os.Rename(mt, s.metaPath(id)); err != nil {
		_ = os.Remove(mt)
		_ = os.Remove(s.dataPath(id))
		return err
	}
	return nil
}

// evictLocked removes least recently used entries until the store fits.
func (s *Store) evictLocked() {
	for s.bytes > s.maxBytes && s.lru.Len() > 0 {
		in := s.lru.Remove(s.lru.Back()).(*indexed)
		delete(s.entries, in.id)
		delete(s.verified, in.id)
		s.bytes -= in.size
		s.remove(in.id)
		s.events.CacheEvicted()
	}
}

// drop forgets and deletes one entry.
func (s *Store) drop(id string) {
	s.mu.Lock()
	if el, ok := s.entries[id]; ok {
		s.bytes -= el.Value.(*indexed).size
		s.lru.Remove(el)
		delete(s.entries, id)
	}
	delete(s.verified, id)
	n := s.bytes
	s.mu.Unlock()
	s.remove(id)
	s.events.CacheBytes(n)
}

// remove deletes an entry's files. Readers holding the data file open keep
// reading it.
func (s *Store) remove(id string) {
	_ = os.Remove(s.metaPath(id))
	_ = os.Remove(s.dataPath(id))
}

// disable turns caching off for the life of the process: renders go on
// without it.
func (s *Store) disable(what string, err error) {
	s.mu.Lock()
	was := s.off
	s.off = true
	s.mu.Unlock()
	if !was {
		s.logger.Warn("video cache turned off: cannot "+what, "dir", s.dir, "err", err)
		s.events.CacheWriteFailed()
	}
}

// Enabled reports whether new entries are being stored.
func (s *Store) Enabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.off
}

// Bytes reports the bytes held by committed entries.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

func (s *Store) dataPath(id string) string { return filepath.Join(s.dir, id+dataExt) }
func (s *Store) metaPath(id string) string { return filepath.Join(s.dir, id+metaExt) }

// validID reports whether id is a lowercase hex SHA-256, the only names the
// store creates (so an id can never escape the directory).
func ValidID(id string) bool {
	if len(id) != 2*sha256.Size {
		return false
	}
	b, err := hex.DecodeString(id)
	return err == nil && bytes.Equal([]byte(hex.EncodeToString(b)), []byte(id))
}
