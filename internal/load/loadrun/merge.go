package loadrun

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"time"
)

// report merges the clients' figures.
func (r *loadRun) report(stats []*clientStats, elapsed time.Duration) *Report {
	rep := &Report{
		Config: ReportConfig{
			Addr: r.cfg.Addr, Clients: r.cfg.Clients, Conns: r.cfg.Conns, DurationSeconds: r.cfg.Duration.Seconds(),
			Width: r.cfg.Width, Height: r.cfg.Height, Frames: r.cfg.Frames, FPS: r.cfg.FPS,
			MaxBackoffSeconds: r.cfg.MaxBackoff.Seconds(), Seed: r.cfg.Seed, RampSeconds: r.cfg.Ramp.Seconds(),
			DistinctIPs: r.cfg.DistinctIPs && isLoopback(r.cfg.Addr), NoRender: r.cfg.NoRender, HoldSeconds: r.cfg.Hold.Seconds(),
		},
		Mode:           "external",
		ElapsedSeconds: elapsed.Seconds(),
		CPUs:           runtime.NumCPU(),
		Failures:       map[string]int{},
		Leases: LeaseReport{
			Capacity:     r.capacity,
			MaxHeld:      int(r.maxHeld.Load()),
			OverAdmitted: int(r.overClient.Load()),
		},
	}
	var all, granted, first, total, hints []time.Duration
	for _, st := range stats {
		hints = append(hints, st.retryHints...)
		for _, a := range st.acquires {
			all = append(all, a.d)
			if a.outcome == "granted" {
				granted = append(granted, a.d)
			}
		}
		first = append(first, st.firstFragment...)
		total = append(total, st.renderTotal...)
		rep.Completed += st.completed
		rep.RefusedLease += st.refusedLease
		rep.RefusedOther += st.refusedOther
		rep.Failed += st.failed
		rep.Aborted += st.aborted
		rep.Bytes += st.bytes
		rep.MaxQueuePosition = max(rep.MaxQueuePosition, st.maxQueue)
		if rep.RefusedOtherExample == "" {
			rep.RefusedOtherExample = st.otherExample
		}
		for k, v := range st.failures {
			rep.Failures[k] += v
		}
	}
	rep.Refused = rep.RefusedLease + rep.RefusedOther
	rep.AcquireAll = latency(all)
	rep.AcquireGranted = latency(granted)
	rep.FirstFragment = latency(first)
	rep.RenderTotal = latency(total)
	rep.RetryInfo = latency(hints)
	if elapsed > 0 {
		rep.RendersPerSecond = float64(rep.Completed) / elapsed.Seconds()
	}
	rep.OverAdmission = rep.Leases.OverAdmitted > 0
	return rep
}

// latency summarizes samples with nearest-rank percentiles, in milliseconds.
func latency(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		i = min(max(i, 0), len(s)-1)
		return ms(s[i])
	}
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return Latency{
		N: len(s), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: ms(s[len(s)-1]),
		Mean: ms(sum / time.Duration(len(s))),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// writeAcquireLog writes every AcquireLease call, in start order, as CSV.
func writeAcquireLog(w io.Writer, stats []*clientStats) {
	var all []acquireSample
	for _, st := range stats {
		all = append(all, st.acquires...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
	fmt.Fprintln(w, "start_ms,latency_ms,client,outcome")
	for _, a := range all {
		fmt.Fprintf(w, "%.3f,%.3f,%d,%s\n", ms(a.at), ms(a.d), a.client, a.outcome)
	}
}
