package loadrun

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// printer writes the report's lines.
type printer struct{ w io.Writer }

func (p printer) line(format string, args ...any) { fmt.Fprintf(p.w, format+"\n", args...) }

// WriteTable prints the report for people, section by section.
func (r *Report) WriteTable(w io.Writer) {
	p := printer{w}
	r.writeSetup(p)
	r.writeFlood(p)
	r.writeCycles(p)
	r.writeLatency(p)
	r.writeLeases(p)
	r.writeResources(p)
	r.writeServerView(p)
	r.writeTargets(p)
}

// writeSetup is what was run, against what.
func (r *Report) writeSetup(p printer) {
	c := r.Config
	server := c.Addr
	if r.Process != nil {
		server += fmt.Sprintf(" (%s, pid %d)", r.Mode, r.Process.PID)
	} else {
		server += " (" + r.Mode + ")"
	}
	ips := "one source IP"
	if c.DistinctIPs {
		ips = "one source IP each"
	}
	p.line("whirl load: %d clients on %d connections (%s) for %s against %s, capacity %d",
		c.Clients, c.Conns, ips, fmtSeconds(c.DurationSeconds), server, r.Leases.Capacity)
	if c.NoRender {
		p.line("NO RENDERS: cycles are AcquireLease -> hold %s -> ReleaseLease only", fmtSeconds(c.HoldSeconds))
	}
	p.line("video %dx%d, %d frames at %d fps, random curve seeds (seed %d); clients ramped up over %s; refusal backoff <= %s, jittered",
		c.Width, c.Height, c.Frames, c.FPS, c.Seed, fmtSeconds(c.RampSeconds), fmtSeconds(c.MaxBackoffSeconds))
	p.line("")
}

// writeCycles is how the cycles ended, and the throughput.
func (r *Report) writeCycles(p printer) {
	p.line("cycles          completed %d   refused %d (pool full %d, other %d)   failed %d   aborted at end %d",
		r.Completed, r.Refused, r.RefusedLease, r.RefusedOther, r.Failed, r.Aborted)
	if r.RefusedOtherExample != "" {
		p.line("                e.g. refused other: %s", r.RefusedOtherExample)
	}
	if len(r.Failures) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Failures)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Failures[k]))
		}
		p.line("failures        %s", strings.Join(parts, ", "))
	}
	p.line("throughput      %.2f renders/s, %d bytes (%.1f MiB) in %.1f s; max queue position seen %d",
		r.RendersPerSecond, r.Bytes, float64(r.Bytes)/(1<<20), r.ElapsedSeconds, r.MaxQueuePosition)
	p.line("")
}

// writeLatency is the latency table, the floors included.
func (r *Report) writeLatency(p printer) {
	p.line("latency (ms)                    n        p50        p90        p99        max       mean")
	row := func(name string, l Latency) {
		p.line("%-24s %8d %10.3f %10.3f %10.3f %10.3f %10.3f", name, l.N, l.P50, l.P90, l.P99, l.Max, l.Mean)
	}
	row("AcquireLease, all", r.AcquireAll)
	row("AcquireLease, granted", r.AcquireGranted)
	row("first media fragment", r.FirstFragment)
	row("render to trailer", r.RenderTotal)
	row("timer wake-up delay", r.WakeupDelay)
	row("floor: TCP echo", r.FloorTCPEcho)
	row("floor: health Check", r.FloorHealthCheck)
	row("RetryInfo advised", r.RetryInfo)
	if f := r.Flood; f != nil {
		row("GenerateCurve, idle", f.CurveIdleMS)
		row("GenerateCurve, flood", f.CurveFloodMS)
		row("flood: still answered", f.AnsweredMS)
		row("flood: still refused", f.RefusedMS)
	}
	if r.FloorTCPEchoErrors+r.FloorHealthCheckErrors > 0 {
		p.line("probe errors    TCP echo %d, health Check %d (not counted as failures)", r.FloorTCPEchoErrors, r.FloorHealthCheckErrors)
	}
	p.line("")
}

// writeLeases is the over-admission check from both sides.
func (r *Report) writeLeases(p printer) {
	l := r.Leases
	p.line("leases          capacity %d; clients held at most %d at once (%d over capacity)", l.Capacity, l.MaxHeld, l.OverAdmitted)
	if l.Polls+l.PollErrors > 0 {
		p.line("                ListLeases: max %d live over %d polls (%d over capacity, %d poll errors)", l.MaxListed, l.Polls, l.PollOver, l.PollErrors)
		if l.LastPollError != "" {
			p.line("                last poll error: %s", l.LastPollError)
		}
	} else {
		p.line("                ListLeases: not polled (no admin token)")
	}
	over := "none"
	if r.OverAdmission {
		over = "DETECTED"
	}
	p.line("over-admission  %s", over)
	p.line("")
}

// writeResources is memory and CPU: the server's, the load generator's and
// the machine's.
func (r *Report) writeResources(p printer) {
	if pr := r.Process; pr != nil {
		p.line("server RSS      peak %s, at end %s, max sampled %s; with ffmpeg children max sampled %s (up to %d children)",
			kb(pr.PeakRSSKB), kb(pr.EndRSSKB), kb(pr.MaxSampledRSSKB), kb(pr.MaxTreeRSSKB), pr.MaxChildren)
		p.line("CPU             server %.1f s, ffmpeg %.1f s, load generator %.1f s; available %d cores x %.1f s = %.1f s",
			pr.ServerCPUSeconds, pr.ChildCPUSeconds, r.LoadCPUSeconds, r.CPUs, r.ElapsedSeconds, float64(r.CPUs)*r.ElapsedSeconds)
		p.line("run-queue wait  server threads %.1f s, load generator threads %.1f s (runnable, waiting for a CPU)",
			pr.RunQueueSeconds, r.LoadRunQueueSeconds)
	} else {
		p.line("server RSS      not measured (no server pid)")
		p.line("CPU             load generator %.1f s", r.LoadCPUSeconds)
	}
	if m := r.Machine; m != nil {
		p.line("machine         busy %.1f s of %.1f s, of which other processes %.1f s; load average %.2f at start, %.2f at end",
			m.BusyCPUSeconds, float64(r.CPUs)*r.ElapsedSeconds, m.OtherCPUSeconds, m.LoadAvgStart, m.LoadAvgEnd)
	}
}

// writeServerView is the server's own account (its /metrics) and its log.
func (r *Report) writeServerView(p printer) {
	if m := r.ServerMetrics; m != nil {
		var bs []string
		for _, b := range m.AcquireBuckets {
			if b.LeSeconds > 0.1 {
				break
			}
			bs = append(bs, fmt.Sprintf("<=%gms %.2f%%", b.LeSeconds*1000, 100*float64(b.Count)/float64(max(m.AcquireCalls, 1))))
		}
		mean := 0.0
		if m.AcquireCalls > 0 {
			mean = 1000 * m.AcquireSumSeconds / float64(m.AcquireCalls)
		}
		p.line("server view     AcquireLease handled %d, mean %.3f ms, %s", m.AcquireCalls, mean, strings.Join(bs, ", "))
		p.line("                grants %d, refusals %d, renders %v, ffmpeg failures %d", m.LeaseGrants, m.LeaseRefusals, m.Renders, m.FFmpegFailures)
	}
	if r.ServerErrorLogs != nil {
		p.line("server log      %d ERROR lines", *r.ServerErrorLogs)
	}
	p.line("")
}

// writeTargets is the verdicts.
func (r *Report) writeTargets(p printer) {
	for _, t := range r.Targets {
		verdict := "MET"
		if !t.Met {
			verdict = "MISSED"
		}
		p.line("target          %-38s %-7s %s", t.Name, verdict, t.Observed)
	}
	if r.OK {
		p.line("result          OK")
	} else {
		p.line("result          FAIL")
	}
}
