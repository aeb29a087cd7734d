package benchrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/whirl-dev/whirl/internal/cache"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// sharers is how many identical requests the shared-render runs send at
// once.
const sharers = 5

// CacheRuns are the cache and shared-render measurements: per round, a cold
// render on a server with an empty video cache, the same request again (a
// cache hit), and on a second server with an empty cache five identical
// requests at once (one render, shared).
type CacheRuns struct {
	Rounds []CacheRound `json:"rounds"`
	// Medians over the rounds.
	ColdSeconds      float64 `json:"median_cold_seconds"`
	ColdCPU          float64 `json:"median_cold_cpu_seconds"`
	HitSeconds       float64 `json:"median_hit_seconds"`
	HitFirstFragment float64 `json:"median_hit_first_fragment_seconds"`
	SharedSeconds    float64 `json:"median_shared_seconds"`
	SharedCPU        float64 `json:"median_shared_cpu_seconds"`
}

// CacheRound is one round. Seconds are request → trailer at the client;
// CPU is this process (server and clients) plus ffmpeg, from getrusage.
type CacheRound struct {
	Cold, Hit E2ERun
	// Shared are the five streams of one video requested at once.
	Shared        []E2ERun `json:"shared"`
	SharedSeconds float64  `json:"shared_seconds"` // first request → last trailer
	SharedCPU     float64  `json:"shared_cpu_seconds"`
	// SharedSources counts the trailers' sources of the five.
	SharedSources map[string]int `json:"shared_sources"`
}

// cacheRound measures one round on fresh servers with empty caches.
func (b *bench) cacheRound(ctx context.Context, i int) error {
	var r CacheRound
	err := withCacheServer(b.cfg, func(s *Server) error {
		var err error
		if r.Cold, err = s.EndToEnd(ctx, b.cfg, nil); err != nil {
			return fmt.Errorf("cold: %w", err)
		}
		r.Hit, err = s.EndToEnd(ctx, b.cfg, nil)
		return err
	})
	if err == nil {
		err = withCacheServer(b.cfg, func(s *Server) error { return b.shared(ctx, s, &r) })
	}
	if err != nil {
		return fmt.Errorf("cache round %d: %w", i+1, err)
	}
	b.cfg.logf("  cache #%d: cold %.2fs (%.2f CPU s), hit %.4fs (first fragment %.4fs, %s), %d shared %.2fs (%.2f CPU s) %v",
		i+1, r.Cold.Seconds, r.Cold.ProcCPU+r.Cold.ChildCPU, r.Hit.Seconds, r.Hit.FirstFragment, r.Hit.Source,
		sharers, r.SharedSeconds, r.SharedCPU, r.SharedSources)
	b.rep.Cache.Rounds = append(b.rep.Cache.Rounds, r)
	return nil
}

// shared sends five identical requests at once and records their wall time
// and CPU.
func (b *bench) shared(ctx context.Context, s *Server, r *CacheRound) error {
	r.Shared = make([]E2ERun, sharers)
	errs := make([]error, sharers)
	cpu0 := readCPU()
	var wg sync.WaitGroup
	for j := range sharers {
		wg.Go(func() { r.Shared[j], errs[j] = s.EndToEnd(ctx, b.cfg, nil) })
	}
	wg.Wait()
	cpu1 := readCPU()
	r.SharedCPU = cpu1.self - cpu0.self + cpu1.children - cpu0.children
	r.SharedSources = map[string]int{}
	for j, run := range r.Shared {
		if errs[j] != nil {
			return fmt.Errorf("shared stream %d: %w", j+1, errs[j])
		}
		r.SharedSeconds = max(r.SharedSeconds, run.Seconds)
		r.SharedSources[run.Source]++
	}
	return nil
}

// withCacheServer runs fn against a fresh in-process server whose video
// cache starts empty in a temporary directory.
func withCacheServer(cfg Config, fn func(*Server) error) error {
	dir, err := os.MkdirTemp("", "whirl-bench-cache")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := startServer(cfg.RenderWorkers, cache.Open(dir, 1<<30, nil, nil))
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func (c *CacheRuns) summarize() {
	var cold, coldCPU, hit, hitFirst, shared, sharedCPU []float64
	for _, r := range c.Rounds {
		cold = append(cold, r.Cold.Seconds)
		coldCPU = append(coldCPU, r.Cold.ProcCPU+r.Cold.ChildCPU)
		hit = append(hit, r.Hit.Seconds)
		hitFirst = append(hitFirst, r.Hit.FirstFragment)
		shared = append(shared, r.SharedSeconds)
		sharedCPU = append(sharedCPU, r.SharedCPU)
	}
	c.ColdSeconds, c.ColdCPU = median(cold), median(coldCPU)
	c.HitSeconds, c.HitFirstFragment = median(hit), median(hitFirst)
	c.SharedSeconds, c.SharedCPU = median(shared), median(sharedCPU)
}

// judgeCache adds the cache targets: a hit's time to last byte ≤ 1/20 of
// the cold render's, its first fragment ≤ 0.05 s, five shared renders ≤
// 1.3 × the CPU of one; and notes any round whose sources were not one
// RENDERED and four SHARED, or whose hit was not CACHED.
func (r *Report) judgeCache() {
	c := r.Cache
	if len(c.Rounds) == 0 {
		return
	}
	status := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	r.Targets = append(r.Targets,
		Target{Name: "cache hit, time to last byte (s)", Want: "≤ 1/20 of cold", Got: c.HitSeconds, Limit: c.ColdSeconds / 20,
			Ratio: c.HitSeconds / c.ColdSeconds, Status: status(c.HitSeconds <= c.ColdSeconds/20)},
		Target{Name: "cache hit, first fragment (s)", Want: "≤ 0.05 s", Got: c.HitFirstFragment, Limit: 0.05,
			Ratio: c.HitFirstFragment / 0.05, Status: status(c.HitFirstFragment > 0 && c.HitFirstFragment <= 0.05)},
		Target{Name: fmt.Sprintf("%d identical at once, CPU s", sharers), Want: "≤ 1.3 × one render", Got: c.SharedCPU, Limit: 1.3 * c.ColdCPU,
			Ratio: c.SharedCPU / c.ColdCPU, Status: status(c.SharedCPU <= 1.3*c.ColdCPU)},
	)
	for i, round := range c.Rounds {
		want := map[string]int{whirlv1.VideoSource_VIDEO_SOURCE_RENDERED.String(): 1, whirlv1.VideoSource_VIDEO_SOURCE_SHARED.String(): sharers - 1}
		if fmt.Sprint(round.SharedSources) != fmt.Sprint(want) || round.Hit.Source != whirlv1.VideoSource_VIDEO_SOURCE_CACHED.String() {
			r.Notes = append(r.Notes, fmt.Sprintf("cache round %d: hit source %s, shared sources %v", i+1, round.Hit.Source, round.SharedSources))
		}
	}
}

// writeCache prints the cache rounds.
func (r *Report) writeCache(w io.Writer) {
	if len(r.Cache.Rounds) == 0 {
		return
	}
	fmt.Fprintln(w, "\ncache and shared renders (per round: cold | hit | five identical at once):")
	for i, c := range r.Cache.Rounds {
		fmt.Fprintf(w, "  #%d: cold %.3f s, %.2f CPU s | hit %.4f s, first fragment %.4f s | shared %.3f s, %.2f CPU s, %v\n",
			i+1, c.Cold.Seconds, c.Cold.ProcCPU+c.Cold.ChildCPU, c.Hit.Seconds, c.Hit.FirstFragment, c.SharedSeconds, c.SharedCPU, c.SharedSources)
	}
}
