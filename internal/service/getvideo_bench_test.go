package service_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/cache"
	"github.com/whirl-dev/whirl/internal/lease"
	"github.com/whirl-dev/whirl/internal/service"
	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// BenchmarkGetVideoFirstByte times a GetVideo call from its start to its
// first chunk, for a 720×720, 300-frame video: from the local tier, and
// from the shared tier (a directory bucket, and S3 when versitygw is
// installed), where the local tier holds only one of two videos asked for
// in turn, so that every call misses locally and downloads, verifies and
// stores the video before its first byte.
func BenchmarkGetVideoFirstByte(b *testing.B) {
	// The first, without a bucket, is the local tier alone.
	for _, bucket := range append([]sharedBucket{{kind: "local"}}, sharedBuckets()...) {
		name := bucket.kind
		if bucket.url != nil {
			name = "shared-" + name
		}
		b.Run(name, func(b *testing.B) {
			var tier *cache.SharedTier
			if bucket.url != nil {
				tier = openBenchTier(b, bucket)
			}
			ids, api := benchVideos(b, tier)
			var firstBytes []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				stream, err := api.GetVideo(b.Context(), &whirlv1.GetVideoRequest{VideoId: ids[i%len(ids)]})
				if err != nil {
					b.Fatal(err)
				}
				for {
					ev, err := stream.Recv()
					if err != nil {
						b.Fatal(err)
					}
					if ev.GetChunk() != nil {
						break
					}
				}
				firstBytes = append(firstBytes, time.Since(start))
				for {
					if _, err := stream.Recv(); err != nil {
						break
					}
				}
			}
			slices.Sort(firstBytes)
			at := func(q float64) float64 { return float64(firstBytes[int(q*float64(len(firstBytes)-1))].Microseconds()) }
			b.ReportMetric(at(.5), "µs-first-byte-p50")
			b.ReportMetric(at(.99), "µs-first-byte-p99")
		})
	}
}

// BenchmarkRepeatOnOtherReplica times a render on one replica (cold: drawn
// and encoded) and the same request on a second replica sharing its
// bucket, whose local tier never held the video: acquire, RenderAnimation
// to the trailer, release, for a 720×720, 300-frame video, a new curve
// each round. The second replica answers from the shared tier.
func BenchmarkRepeatOnOtherReplica(b *testing.B) {
	for _, bucket := range sharedBuckets() {
		b.Run(bucket.kind, func(b *testing.B) {
			tier := openBenchTier(b, bucket)
			replica := func() whirlv1.AnimationServiceClient {
				store := cache.Open(b.TempDir(), 1<<30, nil, nil)
				store.SetShared(tier)
				return benchServer(b, store)
			}
			one, two := replica(), replica()
			var cold, repeat []time.Duration
			for seed := uint64(100); b.Loop(); seed++ {
				start := time.Now()
				first := benchRender(b, one, seed)
				cold = append(cold, time.Since(start))
				tier.Wait() // the upload runs after the render's trailer
				start = time.Now()
				again := benchRender(b, two, seed)
				repeat = append(repeat, time.Since(start))
				if first.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_RENDERED || again.GetSource() != whirlv1.VideoSource_VIDEO_SOURCE_CACHED || again.GetVideoId() != first.GetVideoId() {
					b.Fatalf("replica one: %v %s; replica two: %v %s", first.GetSource(), first.GetVideoId(), again.GetSource(), again.GetVideoId())
				}
			}
			median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
			c, r := median(cold), median(repeat)
			b.ReportMetric(float64(c.Milliseconds()), "ms-cold-p50")
			b.ReportMetric(float64(r.Microseconds())/1000, "ms-repeat-p50")
			b.ReportMetric(float64(r)/float64(c), "repeat/cold")
		})
	}
}

// openBenchTier opens a shared tier on a new bucket of its kind, closed
// with the benchmark.
func openBenchTier(b *testing.B, bucket sharedBucket) *cache.SharedTier {
	tier, err := cache.OpenSharedTier(b.Context(), bucket.url(b), cache.SharedTierOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tier.Close(context.Background()) })
	return tier
}

// benchVideos renders two default-size videos on one server and returns
// their ids and a client of the server to read them from: the same server
// (no tier), or a second one whose local cache holds only one of them,
// behind tier.
func benchVideos(b *testing.B, tier *cache.SharedTier) ([]string, whirlv1.AnimationServiceClient) {
	store := cache.Open(b.TempDir(), 1<<30, nil, nil)
	if tier != nil {
		store.SetShared(tier)
	}
	api := benchServer(b, store)
	var ids []string
	var size int64
	for _, seed := range []uint64{1, 2} {
		tr := benchRender(b, api, seed)
		ids, size = append(ids, tr.GetVideoId()), max(size, tr.GetTotalBytes())
	}
	if tier == nil {
		return ids, api
	}
	tier.Wait()
	small := cache.Open(b.TempDir(), size+size/2, nil, nil)
	small.SetShared(tier)
	return ids, benchServer(b, small)
}

func benchServer(b *testing.B, store *cache.Store) whirlv1.AnimationServiceClient {
	reg := lease.NewMemory(lease.Config{Capacity: 2})
	b.Cleanup(func() { _ = reg.Close() })
	srv := testserver.Start(b, service.Config{Leases: reg, Cache: store})
	return whirlv1.NewAnimationServiceClient(testserver.Dial(b, srv.Addr))
}

// benchRender renders seed's default video under a lease of its own,
// released at the end, and returns its trailer.
func benchRender(b *testing.B, api whirlv1.AnimationServiceClient, seed uint64) *whirlv1.RenderTrailer {
	l, err := api.AcquireLease(b.Context(), &whirlv1.AcquireLeaseRequest{Holder: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_, _ = api.ReleaseLease(context.Background(), &whirlv1.ReleaseLeaseRequest{LeaseId: l.GetLeaseId()})
	}()
	stream, err := api.RenderAnimation(b.Context(), &whirlv1.RenderAnimationRequest{
		LeaseId: l.GetLeaseId(), Source: &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: seed}},
	})
	if err != nil {
		b.Fatal(err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			b.Fatalf("render ended without a trailer: %v", err)
		}
		if tr := ev.GetTrailer(); tr != nil {
			return tr
		}
	}
}
