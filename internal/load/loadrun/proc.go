package loadrun

import (
	"context"
	"time"

	"github.com/whirl-dev/whirl/internal/procfs"
)

// procSampler follows one process (the server) through /proc: its resident
// memory, the resident memory of its direct children (the ffmpeg encoders),
// and its CPU time. Outside Linux every figure stays zero.
type procSampler struct {
	pid    int
	cpu0   procfs.Stat
	delay0 time.Duration

	// Written by run's goroutine only, read by finish after it ends.
	samples      int
	maxRSS       int64 // kB, sampled VmRSS
	maxTree      int64 // kB, sampled server + children
	maxChildren  int
	last         procfs.Memory
	sampleErrors int
}

func newProcSampler(pid int) *procSampler {
	p := &procSampler{pid: pid}
	p.cpu0, _ = procfs.ReadStat(pid)
	p.delay0, _ = procfs.RunDelay(pid)
	return p
}

func (p *procSampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *procSampler) sample() {
	m, err := procfs.ReadMemory(p.pid)
	if err != nil {
		p.sampleErrors++
		return
	}
	p.samples++
	p.last = m
	p.maxRSS = max(p.maxRSS, m.RSS)
	kids, n := childrenRSS(p.pid)
	p.maxTree = max(p.maxTree, m.RSS+kids)
	p.maxChildren = max(p.maxChildren, n)
}

// finish takes a last sample and reports. Peak is the kernel's high-water
// mark (VmHWM), which catches peaks between samples, or the largest sample
// if that is higher (the kernel updates VmHWM lazily).
func (p *procSampler) finish() *ProcessReport {
	p.sample()
	r := &ProcessReport{
		PID:             p.pid,
		Samples:         p.samples,
		PeakRSSKB:       max(p.last.HWM, p.maxRSS),
		EndRSSKB:        p.last.RSS,
		MaxSampledRSSKB: p.maxRSS,
		MaxTreeRSSKB:    p.maxTree,
		MaxChildren:     p.maxChildren,
		SampleErrors:    p.sampleErrors,
	}
	if d, err := procfs.RunDelay(p.pid); err == nil {
		r.RunQueueSeconds = (d - p.delay0).Seconds()
	}
	if st, err := procfs.ReadStat(p.pid); err == nil {
		r.ServerCPUSeconds = float64(st.UTime+st.STime-p.cpu0.UTime-p.cpu0.STime) / procfs.UserHZ
		r.ChildCPUSeconds = float64(st.CUTime+st.CSTime-p.cpu0.CUTime-p.cpu0.CSTime) / procfs.UserHZ
	}
	return r
}

// childrenRSS sums the resident memory (kB) of pid's direct children.
func childrenRSS(pid int) (kB int64, n int) {
	kids, ok := procfs.Children(pid)
	if !ok {
		stats, _ := procfs.Processes(func(st procfs.Stat) bool { return st.PPID == pid })
		for _, st := range stats {
			kids = append(kids, st.PID)
		}
	}
	for _, k := range kids {
		rss, err := procfs.ResidentKB(k)
		if err != nil {
			continue // exited meanwhile
		}
		kB += rss
		n++
	}
	return kB, n
}
