package loadrun

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// scrapeServer reads the server's own AcquireLease handling-time histogram
// and lease counters from its Prometheus endpoint. The histogram's buckets
// are the library defaults (5 ms and up), so it can only say how many calls
// the server took longer than 5 ms over; it tells server-side time from
// time spent in the client, the network stack and the scheduler.
func scrapeServer(ctx context.Context, metricsAddr string) (*ServerMetrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := &ServerMetrics{}
	buckets := map[float64]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, value, ok := parseSample(line)
		if !ok {
			continue
		}
		acquire := labels["grpc_method"] == "AcquireLease" && labels["grpc_service"] == "whirl.v1.AnimationService"
		switch {
		case name == "grpc_server_handling_seconds_bucket" && acquire:
			le, err := strconv.ParseFloat(labels["le"], 64)
			if err == nil {
				buckets[le] = value
			}
		case name == "grpc_server_handling_seconds_count" && acquire:
			m.AcquireCalls = int64(value)
		case name == "grpc_server_handling_seconds_sum" && acquire:
			m.AcquireSumSeconds = value
		case name == "whirl_lease_grants_total":
			m.LeaseGrants = int64(value)
		case name == "whirl_lease_refusals_total":
			m.LeaseRefusals = int64(value)
		case name == "whirl_renders_total":
			if m.Renders == nil {
				m.Renders = map[string]int64{}
			}
			m.Renders[labels["outcome"]] = int64(value)
		case name == "whirl_ffmpeg_failures_total":
			m.FFmpegFailures = int64(value)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	for _, le := range les {
		if math.IsInf(le, 1) {
			continue
		}
		m.AcquireBuckets = append(m.AcquireBuckets, Bucket{LeSeconds: le, Count: int64(buckets[le])})
	}
	return m, nil
}

// parseSample splits one line of the Prometheus text format. Label values
// here never hold quotes or commas.
func parseSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", nil, 0, false
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return "", nil, 0, false
	}
	head := line[:sp]
	labels = map[string]string{}
	if i := strings.IndexByte(head, '{'); i >= 0 {
		name = head[:i]
		for kv := range strings.SplitSeq(strings.TrimSuffix(head[i+1:], "}"), ",") {
			k, val, found := strings.Cut(kv, "=")
			if found {
				labels[k] = strings.Trim(val, `"`)
			}
		}
	} else {
		name = head
	}
	return name, labels, v, true
}
