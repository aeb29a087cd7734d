package cache

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gocloud.dev/blob"
	// The drivers --shared-cache-url may name.
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// SharedEvents receives what the shared tier does, for metrics. Every
// method must be cheap and safe for concurrent use.
type SharedEvents interface {
	// SharedHit counts a local miss the shared tier answered.
	SharedHit()
	// SharedMiss counts a local miss the shared tier did not hold.
	SharedMiss()
	// SharedError counts a failed operation: op is "upload", "download"
	// or "verify" (an object whose bytes do not match its digest).
	SharedError(op string)
	// SharedUploaded and SharedDownloaded report one video moved and how
	// long it took.
	SharedUploaded(bytes int64, d time.Duration)
	SharedDownloaded(bytes int64, d time.Duration)
}

type noSharedEvents struct{}

func (noSharedEvents) SharedHit()                            {}
func (noSharedEvents) SharedMiss()                           {}
func (noSharedEvents) SharedError(string)                    {}
func (noSharedEvents) SharedUploaded(int64, time.Duration)   {}
func (noSharedEvents) SharedDownloaded(int64, time.Duration) {}

// SharedTierOptions tune the shared tier; zero fields take the defaults.
type SharedTierOptions struct {
	// Uploads is how many uploads run at once (default 2); MaxQueued how
	// many may wait (default 256): past it a video is not uploaded.
	Uploads, MaxQueued int
	// Attempts is how often an upload is tried (default 5), the first
	// retry after Backoff (default 1 s), each later one after twice the
	// wait before.
	Attempts int
	Backoff  time.Duration
	// ReadTimeout bounds one fetch from the tier (default 30 s).
	ReadTimeout time.Duration
	// Cooldown is how long local misses skip the tier after a fetch from
	// it failed (default 10 s): a bucket that is down must not add its
	// timeouts to every render.
	Cooldown time.Duration
	Logger   *slog.Logger
	Events   SharedEvents
}

// SharedTier is the second tier of a Store: finished videos in a bucket that
// several servers share, so a video rendered by one is a hit on all. Each
// video is two objects, keyed by its id: id.mp4, the bytes, with its
// SHA-256 in the object's metadata, and id.json, the Store's metadata,
// written after the bytes. Each object appears whole or not at all (the
// bucket's writes are atomic), and a reader trusts neither until the bytes
// hash to the digest both record.
type SharedTier struct {
	bucket *blob.Bucket
	o      SharedTierOptions
	// ctx bounds every operation; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	queued atomic.Int64
	wg     sync.WaitGroup
	// downUntil (Unix nanoseconds) is when fetches may be tried again
	// after one failed.
	downUntil atomic.Int64

	mu       sync.Mutex
	fetching map[string]chan struct{} // id → closed when its fetch ends
}

// OpenSharedTier opens the bucket a gocloud.dev/blob URL names (s3:// or
// file://; credentials come from the environment, as the SDKs read them).
func OpenSharedTier(ctx context.Context, url string, o SharedTierOptions) (*SharedTier, error) {
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("shared cache: %w", err)
	}
	return NewSharedTier(b, o), nil
}

// NewSharedTier returns the tier over bucket, which it closes on Close.
func NewSharedTier(bucket *blob.Bucket, o SharedTierOptions) *SharedTier {
	o.Uploads = cmp.Or(o.Uploads, 2)
	o.MaxQueued = cmp.Or(o.MaxQueued, 256)
	o.Attempts = cmp.Or(o.Attempts, 5)
	o.Backoff = cmp.Or(o.Backoff, time.Second)
	o.ReadTimeout = cmp.Or(o.ReadTimeout, 30*time.Second)
	o.Cooldown = cmp.Or(o.Cooldown, 10*time.Second)
	o.Logger = cmp.Or(o.Logger, slog.Default())
	if o.Events == nil {
		o.Events = noSharedEvents{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &SharedTier{bucket: bucket, o: o, ctx: ctx, cancel: cancel,
		sem: make(chan struct{}, o.Uploads), fetching: map[string]chan struct{}{}}
}

// SetShared makes sh the store's second tier: stored videos are uploaded
// to it and local misses are looked up in it. Call it before the store is
// used.
func (s *Store) SetShared(sh *SharedTier) { s.shared = sh }

// Close lets queued uploads finish until ctx ends, then abandons the rest
// and closes the bucket.
func (sh *SharedTier) Close(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		sh.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		sh.cancel()
		<-done
	}
	sh.cancel()
	_ = sh.bucket.Close()
}

// Wait blocks until no upload is queued or running (tests).
func (sh *SharedTier) Wait() { sh.wg.Wait() }

func dataKey(id string) string { return id + dataExt }
func metaKey(id string) string { return id + metaExt }

// upload copies the entry just stored at path to the bucket in the
// background. A failure is logged and counted, never returned: the video
// is stored locally all the same.
func (sh *SharedTier) upload(id, path string, m meta) {
	if sh.queued.Add(1) > int64(sh.o.MaxQueued) {
		sh.queued.Add(-1)
		sh.failed("upload", id, errors.New("too many uploads queued"))
		return
	}
	// Opened now: eviction may delete the path before the upload runs.
	f, err := os.Open(path)
	if err != nil {
		sh.queued.Add(-1)
		sh.failed("upload", id, err)
		return
	}
	sh.wg.Go(func() {
		defer sh.queued.Add(-1)
		defer f.Close()
		select {
		case sh.sem <- struct{}{}:
		case <-sh.ctx.Done():
			return
		}
		defer func() { <-sh.sem }()
		sh.uploadRetrying(id, f, m)
	})
}

// uploadRetrying tries put up to Attempts times, backing off between.
func (sh *SharedTier) uploadRetrying(id string, f *os.File, m meta) {
	wait := sh.o.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		start := time.Now()
		var n int64
		if n, err = sh.put(id, f, m); err == nil {
			sh.o.Events.SharedUploaded(n, time.Since(start))
			return
		}
		if attempt >= sh.o.Attempts || sh.ctx.Err() != nil {
			break
		}
		sh.o.Logger.Debug("shared cache upload failed; retrying", "video_id", id, "attempt", attempt, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-sh.ctx.Done():
			t.Stop()
		}
		wait *= 2
	}
	sh.failed("upload", id, err)
}

// put writes the video's bytes, then its metadata, unless the bucket
// already holds both for the same digest; it returns the bytes written.
func (sh *SharedTier) put(id string, f *os.File, m meta) (int64, error) {
	ctx, cancel := context.WithTimeout(sh.ctx, sh.o.ReadTimeout)
	defer cancel()
	if held, err := sh.holds(ctx, id, m); held || err != nil {
		return 0, err
	}
	err := sh.bucket.Upload(ctx, dataKey(id), io.NewSectionReader(f, 0, m.Size), &blob.WriterOptions{
		ContentType:  "video/mp4",
		CacheControl: "public, max-age=31536000, immutable",
		Metadata:     map[string]string{"sha256": m.SHA256},
	})
	if err != nil {
		return 0, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	if err := sh.bucket.WriteAll(ctx, metaKey(id), b, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return 0, err
	}
	return m.Size, nil
}

// holds reports whether the bucket already has id's video with m's
// digest (another server uploaded it first); an error is a bucket that
// cannot answer.
func (sh *SharedTier) holds(ctx context.Context, id string, m meta) (bool, error) {
	got, err := sh.readMeta(ctx, id)
	switch {
	case gcerrors.Code(err) == gcerrors.NotFound, errors.Is(err, errCorrupt):
		return false, nil
	case err != nil:
		return false, err
	case got.SHA256 != m.SHA256 || got.Size != m.Size:
		return false, nil
	}
	a, err := sh.bucket.Attributes(ctx, dataKey(id))
	return err == nil && a.Size == m.Size && a.Metadata["sha256"] == m.SHA256, nil
}

func (sh *SharedTier) readMeta(ctx context.Context, id string) (meta, error) {
	var m meta
	b, err := sh.bucket.ReadAll(ctx, metaKey(id))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if err := m.check(); err != nil {
		return m, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return m, nil
}

// errCorrupt marks an object whose contents contradict its metadata.
var errCorrupt = errors.New("corrupt shared cache object")

func (sh *SharedTier) failed(op, id string, err error) {
	sh.o.Events.SharedError(op)
	sh.o.Logger.Warn("shared video cache: "+op+" failed", "video_id", id, "err", err)
}

// fetchShared looks id up in the shared tier after a local miss: its bytes
// are downloaded to a local file, checked against the digest the objects
// record, and stored in the local tier. One fetch per id runs at a time;
// others asking meanwhile wait for it and then look locally.
func (s *Store) fetchShared(id string) (*Entry, bool) {
	sh := s.shared
	if time.Now().UnixNano() < sh.downUntil.Load() {
		return nil, false
	}
	sh.mu.Lock()
	running, busy := sh.fetching[id]
	if !busy {
		sh.fetching[id] = make(chan struct{})
	}
	sh.mu.Unlock()
	if busy {
		select {
		case <-running:
		case <-sh.ctx.Done():
			return nil, false
		}
		return s.lookup(id)
	}
	defer func() {
		sh.mu.Lock()
		close(sh.fetching[id])
		delete(sh.fetching, id)
		sh.mu.Unlock()
	}()
	e, err := s.download(id)
	switch {
	case gcerrors.Code(err) == gcerrors.NotFound:
		sh.o.Events.SharedMiss()
		return nil, false
	case errors.Is(err, errCorrupt):
		sh.failed("verify", id, err)
		sh.discard(id)
		return nil, false
	case err != nil:
		sh.failed("download", id, err)
		sh.downUntil.Store(time.Now().Add(sh.o.Cooldown).UnixNano())
		return nil, false
	}
	sh.o.Events.SharedHit()
	return e, true
}

// download copies id's object to a file of the local tier (or an
// unlinked one when the local tier is off or too small for it), hashing as
// it goes, and stores it if the bytes match the recorded digest.
func (s *Store) download(id string) (*Entry, error) {
	sh := s.shared
	ctx, cancel := context.WithTimeout(sh.ctx, sh.o.ReadTimeout)
	defer cancel()
	start := time.Now()
	m, err := sh.readMeta(ctx, id)
	if err != nil {
		return nil, err
	}
	a, err := sh.bucket.Attributes(ctx, dataKey(id))
	if err != nil {
		return nil, err
	}
	if a.Metadata["sha256"] != m.SHA256 || a.Size != m.Size {
		return nil, fmt.Errorf("%w: the object records %d bytes, SHA-256 %q; its metadata %d, %s", errCorrupt, a.Size, a.Metadata["sha256"], m.Size, m.SHA256)
	}
	f, local := s.create(id)
	if !local {
		if f, err = os.CreateTemp("", "whirl-shared-*"); err != nil {
			return nil, err
		}
		_ = os.Remove(f.Name())
	}
	if err := sh.copyVerified(ctx, id, m, f); err != nil {
		if local {
			_ = os.Remove(f.Name())
		}
		_ = f.Close()
		return nil, err
	}
	sh.o.Events.SharedDownloaded(m.Size, time.Since(start))
	// The file stays open: renamed into place, it is the entry's; refused
	// by the store (too large), it is served all the same.
	if local {
		s.store(f, id, m)
	}
	return &Entry{file: f, size: m.Size, sum: m.SHA256, segments: m.Segments, info: m.Info}, nil
}

// copyVerified writes id's bytes to f and checks their length and digest.
func (sh *SharedTier) copyVerified(ctx context.Context, id string, m meta, f *os.File) error {
	r, err := sh.bucket.NewReader(ctx, dataKey(id), nil)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, m.Size+1))
	switch {
	case err != nil:
		return err
	case n != m.Size:
		return fmt.Errorf("%w: %d bytes, %d recorded", errCorrupt, n, m.Size)
	case hex.EncodeToString(h.Sum(nil)) != m.SHA256:
		return fmt.Errorf("%w: the bytes do not match their SHA-256", errCorrupt)
	}
	return nil
}

// discard deletes a corrupt video from the bucket so that the next upload
// of it, after a render, replaces it.
func (sh *SharedTier) discard(id string) {
	ctx, cancel := context.WithTimeout(sh.ctx, sh.o.ReadTimeout)
	defer cancel()
	_ = sh.bucket.Delete(ctx, metaKey(id))
	_ = sh.bucket.Delete(ctx, dataKey(id))
}
