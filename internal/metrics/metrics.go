// Package metrics holds whirl's Prometheus collectors: the gRPC server
// metrics from go-grpc-middleware plus whirl's own lease, queue and render
// figures. Everything registers on a caller-supplied registry; nothing is
// global.
package metrics

import (
	"net/http"
	"net/http/pprof"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is every collector whirl exports. Its methods satisfy the lease
// registry's Observer and the service's Observer.
type Metrics struct {
	registry *prometheus.Registry
	// GRPC has the per-method call counters and handling-time histograms;
	// its interceptors go into the server's chain.
	GRPC *grpcprom.ServerMetrics

	leaseGrants    prometheus.Counter
	leaseRefusals  prometheus.Counter
	leaseExpiries  prometheus.Counter
	leaseReleases  prometheus.Counter
	leaseWait      prometheus.Histogram
	renderQueue    prometheus.Histogram
	renderSeconds  prometheus.Histogram
	encodeSeconds  prometheus.Histogram
	renders        *prometheus.CounterVec
	framesStreamed prometheus.Counter
	bytesStreamed  prometheus.Counter
	ffmpegFailures prometheus.Counter

	cacheHits          prometheus.Counter
	cacheMisses        prometheus.Counter
	cacheEvictions     prometheus.Counter
	cacheWriteFailures prometheus.Counter
	cacheBytes         prometheus.Gauge
	rendersShared      prometheus.Counter
	streamsResumed     prometheus.Counter

	shared *sharedMetrics
}

// Gauges are read when Prometheus scrapes, from the live state.
type Gauges struct {
	// Leases returns live leases, capacity and blocked AcquireLease calls.
	Leases func() (active, capacity, waiting int)
	// Renders returns animations rendering and waiting for a slot.
	Renders func() (running, queued int)
}

// New registers every collector on a fresh registry, with Go runtime and
// process collectors beside them. The live-state gauges come with Handler,
// once what they read exists.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		f(c)
		return c
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
		f(h)
		return h
	}
	waitBuckets := []float64{.001, .01, .1, .5, 1, 5, 15, 60, 300}
	renderBuckets := []float64{.1, .5, 1, 2, 5, 10, 30, 60, 120, 300}
	m := &Metrics{
		registry: reg,
		GRPC: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			// Fine buckets at the bottom: lease calls are expected in ~1 ms.
			grpcprom.WithHistogramBuckets([]float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}),
		)),
		leaseGrants:        counter("whirl_lease_grants_total", "Leases granted (renewals not counted)."),
		leaseRefusals:      counter("whirl_lease_refusals_total", "AcquireLease calls refused because every slot was taken."),
		leaseExpiries:      counter("whirl_lease_expiries_total", "Leases that ended by reaching their expiry."),
		leaseReleases:      counter("whirl_lease_releases_total", "Leases ended by release or revocation."),
		leaseWait:          histogram("whirl_lease_wait_seconds", "Time waiting AcquireLease calls (wait=true) spent before they were granted.", waitBuckets),
		renderQueue:        histogram("whirl_render_queue_seconds", "Time animations waited for a render slot.", waitBuckets),
		renderSeconds:      histogram("whirl_render_seconds", "Time an animation's pipeline spent drawing frames.", renderBuckets),
		encodeSeconds:      histogram("whirl_encode_seconds", "Wall time from starting ffmpeg to its last output byte.", renderBuckets),
		framesStreamed:     counter("whirl_frames_streamed_total", "Frames handed to ffmpeg for streamed animations."),
		bytesStreamed:      counter("whirl_bytes_streamed_total", "MP4 bytes sent in MediaChunks."),
		ffmpegFailures:     counter("whirl_ffmpeg_failures_total", "Renders that failed because ffmpeg failed or was killed."),
		cacheHits:          counter("whirl_cache_hits_total", "Animations served from the video cache (verified hits)."),
		cacheMisses:        counter("whirl_cache_misses_total", "Animation requests the video cache did not have (or held a corrupt copy of)."),
		cacheEvictions:     counter("whirl_cache_evictions_total", "Cached videos evicted to stay within --cache-max-bytes."),
		cacheWriteFailures: counter("whirl_cache_write_failures_total", "Times the video cache turned itself off because it could not write (full disk, permissions)."),
		cacheBytes:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "whirl_cache_bytes", Help: "Bytes of videos held in the cache."}),
		rendersShared:      counter("whirl_renders_shared_total", "Animation requests that joined a render of the same video already running."),
		streamsResumed:     counter("whirl_streams_resumed_total", "RenderAnimation calls accepted with a resume offset."),
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whirl_renders_total", Help: "Finished animations by outcome (ok, canceled, failed).",
		}, []string{"outcome"}),
	}
	m.shared = newSharedMetrics(reg)
	f(m.GRPC)
	f(m.cacheBytes)
	f(m.renders)
	for _, o := range []string{"ok", "canceled", "failed"} {
		m.renders.WithLabelValues(o)
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Build names a running build in whirl_build_info.
type Build struct {
	Version, Revision, GoVersion string
	// FFmpeg is ffmpeg's version ("7.1.1"), or "none" when renders are
	// disabled for want of a usable one.
	FFmpeg string
}

// SetBuildInfo publishes whirl_build_info: always 1, its labels naming the
// build, so dashboards can group and alert by version. Call it once.
func (m *Metrics) SetBuildInfo(b Build) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "whirl_build_info",
		Help: "Always 1; the labels name the running build: module version, VCS revision, Go release, ffmpeg version.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion, "ffmpeg": b.FFmpeg,
		},
	})
	g.Set(1)
	m.registry.MustRegister(g)
}

// stateCollector reports the live-state gauges, reading each source once
// per scrape: with etcd leases, reading the pool is a round trip.
type stateCollector struct {
	g                         Gauges
	active, capacity, waiters *prometheus.Desc
	rendering, queued         *prometheus.Desc
}

func newStateCollector(g Gauges) stateCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return stateCollector{
		g:         g,
		active:    d("whirl_leases_active", "Live leases."),
		capacity:  d("whirl_lease_capacity", "Maximum live leases."),
		waiters:   d("whirl_lease_waiters", "AcquireLease calls waiting for a slot on this server."),
		rendering: d("whirl_renders_in_flight", "Animations rendering now."),
		queued:    d("whirl_renders_queued", "Animations waiting for a render slot."),
	}
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.g.Leases != nil {
		ch <- c.active
		ch <- c.capacity
		ch <- c.waiters
	}
	if c.g.Renders != nil {
		ch <- c.rendering
		ch <- c.queued
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	if c.g.Leases != nil {
		active, capacity, waiting := c.g.Leases()
		gauge(c.active, active)
		gauge(c.capacity, capacity)
		gauge(c.waiters, waiting)
	}
	if c.g.Renders != nil {
		running, queued := c.g.Renders()
		gauge(c.rendering, running)
		gauge(c.queued, queued)
	}
}

// Handler serves /metrics, with g's gauges beside the collectors New
// registered, and, if withPprof, net/http/pprof under /debug/pprof/. It is
// meant for a listener separate from gRPC.
func (m *Metrics) Handler(g Gauges, withPprof bool) http.Handler {
	state := prometheus.NewRegistry()
	state.MustRegister(newStateCollector(g))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{m.registry, state}, promhttp.HandlerOpts{Registry: m.registry}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Granted counts a new lease.
func (m *Metrics) Granted() { m.leaseGrants.Inc() }

// Refused counts a refused AcquireLease.
func (m *Metrics) Refused() { m.leaseRefusals.Inc() }

// Expired counts a lease that reached its expiry.
func (m *Metrics) Expired() { m.leaseExpiries.Inc() }

// Released counts a released or revoked lease.
func (m *Metrics) Released() { m.leaseReleases.Inc() }

// LeaseWaited records how long a waiting AcquireLease waited before its grant.
func (m *Metrics) LeaseWaited(d time.Duration) { m.leaseWait.Observe(d.Seconds()) }

// RenderQueued records how long an animation waited for a render slot.
func (m *Metrics) RenderQueued(d time.Duration) { m.renderQueue.Observe(d.Seconds()) }

// RenderFinished records one animation's end: outcome is ok, canceled or
// failed; ffmpegFailed marks failures caused by the encoder.
func (m *Metrics) RenderFinished(outcome string, ffmpegFailed bool, render, encode time.Duration, frames int, bytes int64) {
	m.renders.WithLabelValues(outcome).Inc()
	if ffmpegFailed {
		m.ffmpegFailures.Inc()
	}
	if render > 0 {
		m.renderSeconds.Observe(render.Seconds())
	}
	if encode > 0 {
		m.encodeSeconds.Observe(encode.Seconds())
	}
	m.framesStreamed.Add(float64(frames))
	m.bytesStreamed.Add(float64(bytes))
}

// CacheHit counts a verified cache hit.
func (m *Metrics) CacheHit() { m.cacheHits.Inc() }

// CacheMiss counts a request the cache could not serve.
func (m *Metrics) CacheMiss() { m.cacheMisses.Inc() }

// CacheEvicted counts an evicted cache entry.
func (m *Metrics) CacheEvicted() { m.cacheEvictions.Inc() }

// CacheBytes sets the bytes held by the cache.
func (m *Metrics) CacheBytes(n int64) { m.cacheBytes.Set(float64(n)) }

// CacheWriteFailed counts the cache turning itself off after a failed write.
func (m *Metrics) CacheWriteFailed() { m.cacheWriteFailures.Inc() }

// RenderShared counts a request that joined a render in flight.
func (m *Metrics) RenderShared() { m.rendersShared.Inc() }

// StreamResumed counts a stream resumed from an offset.
func (m *Metrics) StreamResumed() { m.streamsResumed.Inc() }
