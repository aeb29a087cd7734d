package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sharedMetrics are the shared video cache tier's collectors.
type sharedMetrics struct {
	hits, misses prometheus.Counter
	errors       *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	seconds      *prometheus.HistogramVec
}

func newSharedMetrics(reg *prometheus.Registry) *sharedMetrics {
	s := &sharedMetrics{
		hits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "whirl_shared_cache_hits_total", Help: "Local cache misses the shared tier answered with a verified video."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "whirl_shared_cache_misses_total", Help: "Local cache misses the shared tier did not hold either."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whirl_shared_cache_errors_total",
			Help: "Failed shared tier operations by op: upload (after every retry), download, verify (an object whose bytes do not match its digest; never served).",
		}, []string{"op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "whirl_shared_cache_bytes_total", Help: "Video bytes moved to (upload) and from (download) the shared tier.",
		}, []string{"direction"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "whirl_shared_cache_seconds", Help: "Time one video took to upload to or download from the shared tier.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"direction"}),
	}
	reg.MustRegister(s.hits, s.misses, s.errors, s.bytes, s.seconds)
	for _, op := range []string{"upload", "download", "verify"} {
		s.errors.WithLabelValues(op)
	}
	for _, d := range []string{"upload", "download"} {
		s.bytes.WithLabelValues(d)
		s.seconds.WithLabelValues(d)
	}
	return s
}

// SharedHit counts a local miss the shared tier answered.
func (m *Metrics) SharedHit() { m.shared.hits.Inc() }

// SharedMiss counts a local miss the shared tier did not hold.
func (m *Metrics) SharedMiss() { m.shared.misses.Inc() }

// SharedError counts a failed shared tier operation.
func (m *Metrics) SharedError(op string) { m.shared.errors.WithLabelValues(op).Inc() }

// SharedUploaded reports one video uploaded.
func (m *Metrics) SharedUploaded(n int64, d time.Duration) { m.sharedMoved("upload", n, d) }

// SharedDownloaded reports one video downloaded.
func (m *Metrics) SharedDownloaded(n int64, d time.Duration) { m.sharedMoved("download", n, d) }

func (m *Metrics) sharedMoved(direction string, n int64, d time.Duration) {
	m.shared.bytes.WithLabelValues(direction).Add(float64(n))
	m.shared.seconds.WithLabelValues(direction).Observe(d.Seconds())
}
