package robustness

import (
	"bufio"
	"context"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"
)

// The gauges of renders running each replica may export, the preferred
// first: renders drawing or encoding, else renders holding a render slot
// (servers from before the first).
const (
	gaugeRunning  = "whirl_renders_running"
	gaugeInFlight = "whirl_renders_in_flight"
)

// Sample is what every replica was running at one instant.
type Sample struct {
	T int64 `json:"t"`
	// Encoders counts each replica's ffmpeg children encoding the suite's
	// video size (idle spares, started for the default size, are left out).
	Encoders []int `json:"encoders"`
	// Gauges is each replica's running-renders gauge, -1 when it could not
	// be read (replica down, or a server without one).
	Gauges []float64 `json:"gauges"`
}

// Sampler reads the replicas at a fixed rate.
type Sampler struct {
	Replicas []*Replica
	Rec      *Recorder
	// VideoSize is the -video_size argument that marks a render's ffmpeg.
	VideoSize string
	client    http.Client
	gauge     atomic.Pointer[string] // the name last read
}

// Gauge is the name of the running-renders gauge the replicas export, empty
// if none was read.
func (s *Sampler) Gauge() string {
	if p := s.gauge.Load(); p != nil {
		return *p
	}
	return ""
}

// gaugeReading is a replica's gauge and when it was read.
type gaugeReading struct {
	v  float64
	at int64
}

// maxGaugeAge is how old a gauge reading may be and still count.
const maxGaugeAge = 250 * time.Millisecond

// Run samples every period until ctx ends and returns the samples. The
// encoders are counted from /proc at each sample, for every replica back
// to back (one instant); the gauges are scraped over HTTP by a loop per
// replica, so a slow scrape never delays a sample, and each sample takes
// the latest reading (-1 if older than maxGaugeAge).
func (s *Sampler) Run(ctx context.Context, period time.Duration) []Sample {
	s.client.Timeout = maxGaugeAge
	fs, fsErr := procfs.NewDefaultFS()
	latest := make([]atomic.Pointer[gaugeReading], len(s.Replicas))
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, r := range s.Replicas {
		wg.Go(func() {
			for ctx.Err() == nil {
				latest[i].Store(&gaugeReading{v: s.readGauge(ctx, r.MetricsAddr()), at: s.Rec.Now()})
				sleep(ctx, period/2)
			}
		})
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	var out []Sample
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		smp := Sample{T: s.Rec.Now()}
		for _, r := range s.Replicas {
			n := 0
			if fsErr == nil {
				n = encoders(fs, r.PID(), s.VideoSize)
			}
			smp.Encoders = append(smp.Encoders, n)
		}
		for i := range s.Replicas {
			g := latest[i].Load()
			if g == nil || smp.T-g.at > int64(maxGaugeAge) {
				smp.Gauges = append(smp.Gauges, -1)
				continue
			}
			smp.Gauges = append(smp.Gauges, g.v)
		}
		out = append(out, smp)
	}
}

// encoders counts pid's live ffmpeg children encoding size.
func encoders(fs procfs.FS, pid int, size string) int {
	if pid == 0 {
		return 0
	}
	n := 0
	for _, k := range childPIDs(fs, pid) {
		if isEncoder(fs, k, size) {
			n++
		}
	}
	return n
}

// isEncoder reports whether pid is a live ffmpeg with size among its
// arguments.
func isEncoder(fs procfs.FS, pid int, size string) bool {
	p, err := fs.Proc(pid)
	if err != nil {
		return false
	}
	st, err := p.Stat()
	if err != nil || st.State == "Z" || st.Comm != "ffmpeg" {
		return false
	}
	args, err := p.CmdLine()
	return err == nil && len(args) > 1 && slices.Contains(args[1:], size)
}

// readGauge reads the running-renders gauge from a replica's /metrics; -1
// if it cannot.
func (s *Sampler) readGauge(ctx context.Context, addr string) float64 {
	if addr == "" {
		return -1
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return -1
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	v, name := parseGauge(resp.Body)
	if name != "" {
		s.gauge.Store(&name)
	}
	return v
}

// parseGauge finds the preferred running-renders gauge in a Prometheus text
// exposition: its value and name, or -1 and "".
func parseGauge(r io.Reader) (float64, string) {
	found := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || (name != gaugeRunning && name != gaugeInFlight) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && !math.IsNaN(v) {
			found[name] = v
		}
	}
	for _, name := range []string{gaugeRunning, gaugeInFlight} {
		if v, ok := found[name]; ok {
			return v, name
		}
	}
	return -1, ""
}
