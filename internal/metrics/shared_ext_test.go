package metrics_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/metrics"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// storeVideo renders a one-segment video of data into the store under its
// digest, and returns the id.
func storeVideo(t *testing.T, s *cache.Store, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	id := hex.EncodeToString(sum[:])
	r, _ := cache.NewGroup(t.Context(), s).Open(id, 0, func(_ context.Context, w *cache.Writer) (cache.Timing, error) {
		w.Segment(data)
		return cache.Timing{}, nil
	})
	defer r.Close()
	for {
		_, wait, err := r.Next()
		if err == io.EOF {
			return id
		}
		if err != nil {
			t.Fatal(err)
		}
		if wait != nil {
			<-wait
		}
	}
}

// TestSharedCacheCounters: uploads, hits, misses and the failures of a
// bucket that cannot be reached reach /metrics.
func TestSharedCacheCounters(t *testing.T) {
	m := metrics.New()
	bucket := (&url.URL{Scheme: "file", Path: t.TempDir()}).String()
	open := func(url string, o cache.SharedTierOptions) (*cache.Store, *cache.SharedTier) {
		o.Events = m
		tier, err := cache.OpenSharedTier(t.Context(), url, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tier.Close(context.Background()) })
		s := cache.Open(t.TempDir(), 1<<20, nil, nil)
		s.SetShared(tier)
		return s, tier
	}
	one, tier := open(bucket, cache.SharedTierOptions{})
	data := bytes.Repeat([]byte("whirl"), 1000)
	id := storeVideo(t, one, data)
	tier.Wait()
	two, _ := open(bucket, cache.SharedTierOptions{})
	if v, ok := two.Video(id, 0); !ok {
		t.Fatal("no shared hit")
	} else {
		v.Close()
	}
	down, downTier := open(testserver.UnreachableS3URL(t), cache.SharedTierOptions{Attempts: 1, Cooldown: time.Hour})
	storeVideo(t, down, []byte("another video"))
	downTier.Wait()

	body := scrape(t, m.Handler(metrics.Gauges{Leases: func() (int, int, int) { return 0, 0, 0 }, Renders: func() (int, int) { return 0, 0 }}, false))
	n := strconv.Itoa(len(data))
	for _, want := range []string{
		"whirl_shared_cache_hits_total 1",
		// The first store's miss before its render; the second's lookup hit.
		"whirl_shared_cache_misses_total 1",
		`whirl_shared_cache_bytes_total{direction="upload"} ` + n,
		`whirl_shared_cache_bytes_total{direction="download"} ` + n,
		`whirl_shared_cache_seconds_count{direction="upload"} 1`,
		`whirl_shared_cache_seconds_count{direction="download"} 1`,
		`whirl_shared_cache_errors_total{op="upload"} 1`,
		`whirl_shared_cache_errors_total{op="download"} 1`,
		`whirl_shared_cache_errors_total{op="verify"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scraped:\n%s", grepWhirl(body))
	}
}
