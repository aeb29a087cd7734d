package service_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/browser"
	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// sharedReplica is one server with its own local cache and the shared
// tier at bucketURL, its gRPC API and its HTTP listener.
type sharedReplica struct {
	renderEnv
	tier *cache.SharedTier
	http string // base URL
}

// videoFiles is the HTTP front end's view of a server's cache tiers.
type videoFiles struct{ srv *testserver.Server }

func (v videoFiles) OpenVideo(id string) (browser.Video, bool) {
	f, facts, ok := v.srv.FinishedVideo(id)
	return browser.Video{File: f.File, SHA256: f.SHA256, Facts: facts}, ok
}

func (v videoFiles) Admit(r *http.Request) (func(), time.Duration, bool) {
	return v.srv.AdmitVideoRead(r.RemoteAddr, "")
}

func startSharedReplica(t *testing.T, bucketURL string) sharedReplica {
	t.Helper()
	tier, err := cache.OpenSharedTier(t.Context(), bucketURL, cache.SharedTierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tier.Close(context.Background()) })
	store := cache.Open(t.TempDir(), 1<<30, nil, nil)
	store.SetShared(tier)
	reg := lease.NewMemory(lease.Config{Capacity: 5})
	t.Cleanup(func() { _ = reg.Close() })
	p := &pids{}
	srv := testserver.Start(t, service.Config{Leases: reg, Cache: store, StartEncoder: p.starter()})
	h, err := browser.NewHandler(srv.GRPCServer(), browser.Options{Videos: videoFiles{srv}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return sharedReplica{
		renderEnv: renderEnv{api: whirlv1.NewAnimationServiceClient(testserver.Dial(t, srv.Addr)), pids: p},
		tier:      tier, http: hs.URL,
	}
}

// sharedBucket is a kind of bucket the shared tier is tested on; url makes
// a new, empty one for the test.
type sharedBucket struct {
	kind string
	url  func(testing.TB) string
}

// sharedBuckets are a directory (file://) and S3 on versitygw.
func sharedBuckets() []sharedBucket {
	return []sharedBucket{
		{"file", func(t testing.TB) string { return (&url.URL{Scheme: "file", Path: t.TempDir()}).String() }},
		{"s3", func(t testing.TB) string { return testserver.StartS3(t).URL }},
	}
}

// TestSharedTierAcrossReplicas: a video rendered on one replica is CACHED
// on another sharing the bucket, for RenderAnimation, GetVideo and HTTP
// alike, with no ffmpeg started there.
func TestSharedTierAcrossReplicas(t *testing.T) {
	for _, bucket := range sharedBuckets() {
		t.Run(bucket.kind, func(t *testing.T) {
			url := bucket.url(t)
			one, two := startSharedReplica(t, url), startSharedReplica(t, url)
			reqs := []*whirlv1.RenderAnimationRequest{smallVideo(21, 30), smallVideo(22, 30), smallVideo(23, 30)}
			var rendered []result
			for _, req := range reqs {
				rendered = append(rendered, renderedVideo(t, one.renderEnv, req))
			}
			one.tier.Wait()

			again := renderedVideo(t, two.renderEnv, reqs[0])
			if again.trailer.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_CACHED || !bytes.Equal(again.video, rendered[0].video) {
				t.Errorf("RenderAnimation on replica two: source %v, %d bytes", again.trailer.GetSource(), len(again.video))
			}
			got, h, tr, err := getRange(t, two.api, &whirlv1.GetVideoRequest{VideoId: rendered[1].header.GetVideoId()})
			if err != nil || !bytes.Equal(got, rendered[1].video) || tr.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_CACHED || h.GetFrames() != 30 {
				t.Errorf("GetVideo on replica two: %v, %d bytes, header %v", err, len(got), h)
			}
			resp, err := http.Get(two.http + browser.VideosPath + rendered[2].header.GetVideoId() + ".mp4")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, rendered[2].video) {
				t.Errorf("HTTP on replica two: %d, %v, %d bytes", resp.StatusCode, err, len(body))
			}
			if n := len(two.pids.all()); n != 0 {
				t.Errorf("replica two started %d encoders", n)
			}
			if len(one.pids.all()) == 0 {
				t.Error("replica one started no encoder: the test proves nothing")
			}
		})
	}
}
