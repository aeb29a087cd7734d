package loadrun

import (
	"fmt"
	"strings"
)

// Report is everything one run measured; -json prints it as is.
type Report struct {
	Config         ReportConfig `json:"config"`
	Mode           string       `json:"mode"` // "child" (server started here) or "external"
	ElapsedSeconds float64      `json:"elapsed_seconds"`

	// Completed cycles: lease granted, render checked, lease released.
	Completed int `json:"completed"`
	// Refused AcquireLease calls (RESOURCE_EXHAUSTED), retried after a
	// backoff: expected, not failures. RefusedLease carried QuotaFailure on
	// "leases" (the pool was full); RefusedOther did not (e.g. a rate limit).
	Refused      int `json:"refused"`
	RefusedLease int `json:"refused_lease_full"`
	RefusedOther int `json:"refused_other"`
	// RefusedOtherExample is one such refusal, as the client saw it.
	RefusedOtherExample string `json:"refused_other_example,omitempty"`
	// Failed cycles or calls, by kind: anything unexpected.
	Failed   int            `json:"failed"`
	Failures map[string]int `json:"failures,omitempty"`
	// Aborted renders: cut by the drain deadline at the end of the run.
	Aborted int `json:"aborted"`

	// AcquireAll is every AcquireLease call, granted or refused;
	// AcquireGranted the granted ones only. Client-side wall time.
	AcquireAll     Latency `json:"acquire_lease_all_ms"`
	AcquireGranted Latency `json:"acquire_lease_granted_ms"`
	// FirstFragment is RenderAnimation sent → the chunk that completes the
	// first media fragment after the init segment (queueing included).
	FirstFragment Latency `json:"first_fragment_ms"`
	// RenderTotal is RenderAnimation sent → trailer received.
	RenderTotal Latency `json:"render_total_ms"`
	// RetryInfo is the delay the pool-full refusals advised (before the
	// client's cap of MaxBackoff).
	RetryInfo Latency `json:"retry_info_ms"`
	// WakeupDelay is how late a 2 ms timer in the load generator woke up:
	// the machine's scheduling delay, a floor under the latencies above.
	WakeupDelay Latency `json:"wakeup_delay_ms"`
	// The floor probes, sampled every 10-30 ms while new cycles start:
	// FloorTCPEcho is a 32-byte round trip over a loopback TCP connection
	// inside the load generator (the machine's own wake-up and scheduling
	// cost), FloorHealthCheck a grpc.health.v1 Health/Check on a connection
	// of its own to the server (gRPC's transport and the server's scheduling
	// without the lease logic). Their failed samples are counted apart and
	// are not failures of the run.
	FloorTCPEcho           Latency `json:"floor_tcp_echo_ms"`
	FloorHealthCheck       Latency `json:"floor_health_check_ms"`
	FloorTCPEchoErrors     int     `json:"floor_tcp_echo_errors,omitempty"`
	FloorHealthCheckErrors int     `json:"floor_health_check_errors,omitempty"`

	RendersPerSecond float64 `json:"renders_per_second"`
	Bytes            int64   `json:"bytes"`
	MaxQueuePosition int     `json:"max_queue_position"`

	Leases        LeaseReport `json:"leases"`
	OverAdmission bool        `json:"over_admission"`

	Process        *ProcessReport `json:"server_process,omitempty"`
	LoadCPUSeconds float64        `json:"load_generator_cpu_seconds"`
	// LoadRunQueueSeconds: the load generator's threads, runnable but
	// waiting for a CPU.
	LoadRunQueueSeconds float64        `json:"load_generator_run_queue_wait_seconds"`
	CPUs                int            `json:"cpus"`
	Machine             *MachineReport `json:"machine,omitempty"`
	ServerMetrics       *ServerMetrics `json:"server_metrics,omitempty"`
	ServerErrorLogs     *int           `json:"server_error_log_lines,omitempty"`
	// Flood is the abuse test's part, when Config.Flood asked for one.
	Flood *FloodReport `json:"flood,omitempty"`

	Targets []Target `json:"targets"`
	// OK is false when a cycle failed or the server over-admitted; the
	// command then exits 1. Latency targets are reported, not enforced.
	OK bool `json:"ok"`
}

// ReportConfig echoes the run's settings.
type ReportConfig struct {
	Addr              string  `json:"addr"`
	Clients           int     `json:"clients"`
	Conns             int     `json:"conns"`
	DurationSeconds   float64 `json:"duration_seconds"`
	Width             int     `json:"width"`
	Height            int     `json:"height"`
	Frames            int     `json:"frames"`
	FPS               int     `json:"fps"`
	MaxBackoffSeconds float64 `json:"max_backoff_seconds"`
	Seed              uint64  `json:"seed"`
	RampSeconds       float64 `json:"ramp_seconds"`
	DistinctIPs       bool    `json:"distinct_source_ips"`
	NoRender          bool    `json:"no_render,omitempty"`
	HoldSeconds       float64 `json:"hold_seconds,omitempty"`
}

// Latency is a distribution in milliseconds (nearest-rank percentiles).
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// LeaseReport is the over-admission check from both sides.
type LeaseReport struct {
	Capacity int `json:"capacity"`
	// MaxHeld is the most leases the clients held at once: counted from the
	// AcquireLease response to the moment ReleaseLease is sent, so every
	// lease counted is certainly live on the server.
	MaxHeld      int `json:"max_held_by_clients"`
	OverAdmitted int `json:"client_over_admissions"`
	// From LeaseAdminService/ListLeases polls (with an admin token).
	Polls         int    `json:"polls"`
	PollErrors    int    `json:"poll_errors"`
	LastPollError string `json:"last_poll_error,omitempty"`
	MaxListed     int    `json:"max_listed_by_server"`
	PollOver      int    `json:"server_over_admissions"`
}

// ProcessReport is the server process as /proc saw it (kB, CPU seconds).
type ProcessReport struct {
	PID int `json:"pid"`
	// PeakRSSKB is VmHWM at the end (the kernel's high-water mark), or the
	// largest VmRSS sampled if higher.
	PeakRSSKB       int64 `json:"peak_rss_kb"`
	EndRSSKB        int64 `json:"end_rss_kb"`
	MaxSampledRSSKB int64 `json:"max_sampled_rss_kb"`
	// MaxTreeRSSKB is the largest sampled sum of the server and its direct
	// children (the ffmpeg encoders).
	MaxTreeRSSKB     int64   `json:"max_sampled_rss_with_children_kb"`
	MaxChildren      int     `json:"max_children"`
	Samples          int     `json:"samples"`
	SampleErrors     int     `json:"sample_errors,omitempty"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	// ChildCPUSeconds is CPU of the children the server reaped (ffmpeg).
	ChildCPUSeconds float64 `json:"ffmpeg_cpu_seconds"`
	// RunQueueSeconds is how long the server's threads were runnable but
	// waiting for a CPU (schedstat), summed over threads.
	RunQueueSeconds float64 `json:"run_queue_wait_seconds"`
}

// MachineReport is the whole machine during the run: other work on it
// competes with the server and the load generator for the same cores.
type MachineReport struct {
	BusyCPUSeconds float64 `json:"busy_cpu_seconds"`
	// OtherCPUSeconds is busy time not spent in the load generator, the
	// server or its reaped ffmpeg children (in-process servers count as the
	// load generator).
	OtherCPUSeconds float64 `json:"other_cpu_seconds"`
	LoadAvgStart    float64 `json:"loadavg1_start"`
	LoadAvgEnd      float64 `json:"loadavg1_end"`
}

// ServerMetrics is the server's own account, from /metrics.
type ServerMetrics struct {
	AcquireCalls      int64            `json:"acquire_calls"`
	AcquireSumSeconds float64          `json:"acquire_handling_sum_seconds"`
	AcquireBuckets    []Bucket         `json:"acquire_handling_buckets"`
	LeaseGrants       int64            `json:"lease_grants"`
	LeaseRefusals     int64            `json:"lease_refusals"`
	Renders           map[string]int64 `json:"renders,omitempty"`
	FFmpegFailures    int64            `json:"ffmpeg_failures"`
}

// Bucket is a cumulative histogram bucket.
type Bucket struct {
	LeSeconds float64 `json:"le_seconds"`
	Count     int64   `json:"count"`
}

// Target is one goal and whether the run met it.
type Target struct {
	Name     string `json:"name"`
	Met      bool   `json:"met"`
	Observed string `json:"observed"`
	Enforced bool   `json:"enforced"`
}

// Judge fills in the targets, AcquireLease's p99 against
// acquireP99TargetMS, and whether the run is OK.
func (r *Report) Judge(acquireP99TargetMS float64) {
	// The floors' p99s go with AcquireLease's for context; they do not
	// decide the target.
	acquireP99 := fmt.Sprintf("%.3f ms", r.AcquireAll.P99)
	var floors []string
	for _, f := range []struct {
		name string
		l    Latency
	}{{"health Check", r.FloorHealthCheck}, {"TCP echo", r.FloorTCPEcho}} {
		if f.l.N > 0 {
			floors = append(floors, fmt.Sprintf("%s p99 %.1f ms", f.name, f.l.P99))
		}
	}
	if len(floors) > 0 {
		acquireP99 += " (" + strings.Join(floors, ", ") + ")"
	}
	r.Targets = []Target{
		{Name: "failed = 0", Met: r.Failed == 0, Observed: fmt.Sprint(r.Failed), Enforced: true},
		{Name: "no over-admission", Met: !r.OverAdmission,
			Observed: fmt.Sprintf("clients held max %d, server listed max %d, capacity %d", r.Leases.MaxHeld, r.Leases.MaxListed, r.Leases.Capacity), Enforced: true},
		{Name: fmt.Sprintf("AcquireLease p99 (all) <= %g ms", acquireP99TargetMS), Met: r.AcquireAll.N > 0 && r.AcquireAll.P99 <= acquireP99TargetMS,
			Observed: acquireP99},
		{Name: "at least one completed", Met: r.Completed > 0, Observed: fmt.Sprint(r.Completed)},
	}
	if r.Flood != nil {
		r.Targets = append(r.Targets, r.floodTargets()...)
	}
	r.OK = true
	for _, t := range r.Targets {
		if t.Enforced && !t.Met {
			r.OK = false
		}
	}
}

func kb(k int64) string { return fmt.Sprintf("%.1f MiB", float64(k)/1024) }

func fmtSeconds(s float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", s), "0"), ".") + "s"
}
