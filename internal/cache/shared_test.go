package cache_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// tierCounts records the shared tier's events.
type tierCounts struct {
	hits, misses, uploaded, downloaded atomic.Int64
	mu                                 sync.Mutex
	errors                             map[string]int
}

func (c *tierCounts) SharedHit()  { c.hits.Add(1) }
func (c *tierCounts) SharedMiss() { c.misses.Add(1) }
func (c *tierCounts) SharedError(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errors == nil {
		c.errors = map[string]int{}
	}
	c.errors[op]++
}
func (c *tierCounts) SharedUploaded(n int64, _ time.Duration)   { c.uploaded.Add(n) }
func (c *tierCounts) SharedDownloaded(n int64, _ time.Duration) { c.downloaded.Add(n) }

func (c *tierCounts) errorsOf(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errors[op]
}

// bucketKinds are the buckets every shared tier test runs against: a
// directory (file://) and a real S3 server (versitygw).
func bucketKinds(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"file": func(t *testing.T) string { return (&url.URL{Scheme: "file", Path: t.TempDir()}).String() },
		"s3":   func(t *testing.T) string { return testserver.StartS3(t).URL },
	}
}

// replica is one server's cache: a local store in its own directory with
// the shared tier at bucketURL behind it.
type replica struct {
	store  *cache.Store
	group  *cache.Group
	tier   *cache.SharedTier
	local  *counts
	shared *tierCounts
}

func newReplica(t *testing.T, bucketURL string, maxBytes int64, o cache.SharedTierOptions) replica {
	t.Helper()
	r := replica{local: &counts{}, shared: &tierCounts{}}
	o.Logger, o.Events = quiet(), r.shared
	tier, err := cache.OpenSharedTier(t.Context(), bucketURL, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tier.Close(context.Background()) })
	r.tier = tier
	r.store, r.group = open(t, t.TempDir(), maxBytes, r.local)
	r.store.SetShared(tier)
	return r
}

func TestSharedTier(t *testing.T) {
	for kind, bucket := range bucketKinds(t) {
		t.Run(kind, func(t *testing.T) {
			url := bucket(t)
			t.Run("upload and cross-replica hit", func(t *testing.T) { testCrossReplica(t, url) })
			t.Run("corrupt object never served", func(t *testing.T) { testCorruptObject(t, url) })
			t.Run("local eviction refilled", func(t *testing.T) { testEvictionRefill(t, url) })
		})
	}
}

func testCrossReplica(t *testing.T, url string) {
	v := video{seed: 1, segments: []int{100, 70000, 5000}}
	one, two := newReplica(t, url, 1<<20, cache.SharedTierOptions{}), newReplica(t, url, 1<<20, cache.SharedTierOptions{})
	one.store.Describe(v.id(), []byte(`{"facts":1}`))
	var renders atomic.Int32
	if _, src, _, err := fetch(t, one.group, v, 0, &renders); err != nil || src != cache.Rendered {
		t.Fatalf("render on replica one: %v, %v", src, err)
	}
	one.tier.Wait()
	if got := one.shared.uploaded.Load(); got != int64(len(v.bytes())) {
		t.Fatalf("replica one uploaded %d bytes, want %d (errors %v)", got, len(v.bytes()), one.shared.errors)
	}
	got, src, res, err := fetch(t, two.group, v, 0, &renders)
	if err != nil || src != cache.Cached || !bytes.Equal(got, v.bytes()) || res.SHA256 != sum(v.bytes()) {
		t.Fatalf("replica two: %v, %v, %d bytes", src, err, len(got))
	}
	if renders.Load() != 1 || two.shared.hits.Load() != 1 || two.shared.downloaded.Load() != int64(len(v.bytes())) {
		t.Errorf("renders %d, shared hits %d, downloaded %d", renders.Load(), two.shared.hits.Load(), two.shared.downloaded.Load())
	}
	// The local tier was filled: the next hit reads no bucket.
	video, ok := two.store.Video(v.id(), 0)
	if !ok || string(video.Info) != `{"facts":1}` {
		t.Fatalf("second look on replica two: %v, info %s", ok, video.Info)
	}
	video.Close()
	if two.shared.hits.Load() != 1 || two.local.hits.Load() != 2 {
		t.Errorf("after the fill: shared hits %d, local hits %d", two.shared.hits.Load(), two.local.hits.Load())
	}
	// A video no one rendered is a miss in both tiers.
	if _, ok := two.store.Lookup(video0().id()); ok || two.shared.misses.Load() != 1 {
		t.Errorf("unknown video: hit %v, shared misses %d", ok, two.shared.misses.Load())
	}
}

func video0() video { return video{seed: 99, segments: []int{10}} }

// testCorruptObject replaces an uploaded video's bytes with others of the
// same length under the same recorded digest: the reader must refuse them.
func testCorruptObject(t *testing.T, url string) {
	v := video{seed: 2, segments: []int{300, 400}}
	one, two := newReplica(t, url, 1<<20, cache.SharedTierOptions{}), newReplica(t, url, 1<<20, cache.SharedTierOptions{})
	var renders atomic.Int32
	if _, _, _, err := fetch(t, one.group, v, 0, &renders); err != nil {
		t.Fatal(err)
	}
	one.tier.Wait()
	b, err := blob.OpenBucket(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bad := bytes.Clone(v.bytes())
	bad[500] ^= 0xff
	if err := b.WriteAll(t.Context(), v.id()+".mp4", bad, &blob.WriterOptions{
		ContentType: "video/mp4", Metadata: map[string]string{"sha256": sum(v.bytes())},
	}); err != nil {
		t.Fatal(err)
	}
	if got, ok := two.store.Video(v.id(), 0); ok {
		got.Close()
		t.Fatal("a corrupt object was served")
	}
	if two.shared.errorsOf("verify") != 1 || two.shared.hits.Load() != 0 {
		t.Errorf("verify errors %d, hits %d", two.shared.errorsOf("verify"), two.shared.hits.Load())
	}
	// The corrupt object is gone, so the next render's upload replaces it.
	if ok, err := b.Exists(t.Context(), v.id()+".mp4"); err != nil || ok {
		t.Errorf("corrupt object still there: %v, %v", ok, err)
	}
	got, src, _, err := fetch(t, two.group, v, 0, &renders)
	if err != nil || src != cache.Rendered || !bytes.Equal(got, v.bytes()) {
		t.Errorf("after the refusal: %v, %v", src, err)
	}
}

// testEvictionRefill: a video evicted from a small local tier comes back
// from the shared one, not from a render.
func testEvictionRefill(t *testing.T, url string) {
	first, second := video{seed: 3, segments: []int{600}}, video{seed: 4, segments: []int{600}}
	r := newReplica(t, url, 1000, cache.SharedTierOptions{})
	var renders atomic.Int32
	for _, v := range []video{first, second} {
		if _, _, _, err := fetch(t, r.group, v, 0, &renders); err != nil {
			t.Fatal(err)
		}
	}
	r.tier.Wait()
	if r.local.evictions.Load() != 1 {
		t.Fatalf("%d evictions, want 1", r.local.evictions.Load())
	}
	got, src, _, err := fetch(t, r.group, first, 0, &renders)
	if err != nil || src != cache.Cached || !bytes.Equal(got, first.bytes()) || renders.Load() != 2 {
		t.Fatalf("evicted video: %v, %v, %d renders", src, err, renders.Load())
	}
	if r.shared.hits.Load() != 1 {
		t.Errorf("shared hits %d, want 1", r.shared.hits.Load())
	}
}

// TestSharedTierUnreachable: with the bucket down, renders and local hits
// go on; the failed upload (after its retries) and download are counted,
// nothing fails.
func TestSharedTierUnreachable(t *testing.T) {
	url := testserver.UnreachableS3URL(t)
	r := newReplica(t, url, 1<<20, cache.SharedTierOptions{Attempts: 2, Backoff: time.Millisecond, Cooldown: time.Hour})
	v := video{seed: 5, segments: []int{100, 200}}
	var renders atomic.Int32
	if got, src, _, err := fetch(t, r.group, v, 0, &renders); err != nil || src != cache.Rendered || !bytes.Equal(got, v.bytes()) {
		t.Fatalf("render: %v, %v", src, err)
	}
	r.tier.Wait()
	if r.shared.errorsOf("upload") != 1 || r.shared.uploaded.Load() != 0 {
		t.Errorf("upload errors %d, uploaded %d", r.shared.errorsOf("upload"), r.shared.uploaded.Load())
	}
	if _, src, _, err := fetch(t, r.group, v, 0, &renders); err != nil || src != cache.Cached {
		t.Errorf("local hit: %v, %v", src, err)
	}
	// The render's own lookup failed; the next ones skip the bucket for
	// the cooldown instead of waiting on it again.
	if _, ok := r.store.Lookup(video0().id()); ok || r.shared.errorsOf("download") != 1 {
		t.Errorf("lookup with the bucket down: hit %v, download errors %d, want 1", ok, r.shared.errorsOf("download"))
	}
}

// TestSharedTierFileLayout: objects are keyed by video id under the URL's
// prefix.
func TestSharedTierFileLayout(t *testing.T) {
	dir := t.TempDir()
	r := newReplica(t, "file://"+dir+"?prefix=videos/", 1<<20, cache.SharedTierOptions{})
	v := video{seed: 6, segments: []int{10, 20}}
	var renders atomic.Int32
	if _, _, _, err := fetch(t, r.group, v, 0, &renders); err != nil {
		t.Fatal(err)
	}
	r.tier.Wait()
	for _, name := range []string{v.id() + ".mp4", v.id() + ".json"} {
		if !fileExists(filepath.Join(dir, "videos", name)) {
			t.Errorf("no %s in the bucket", name)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
