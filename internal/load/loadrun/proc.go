package loadrun

import (
	"context"
	"os"
	"time"

	"github.com/prometheus/procfs"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: 100 on every
// Linux architecture Go supports (procfs.ProcStat.CPUTime divides by it too).
const userHZ = 100

// memory is a process's resident memory in kB: VmRSS and the kernel's
// high-water mark of it, VmHWM (procfs reports both in bytes).
type memory struct{ rss, hwm int64 }

// procSampler follows one process (the server) through /proc: its resident
// memory, the resident memory of its direct children (the ffmpeg encoders),
// and its CPU time. Outside Linux every figure stays zero.
type procSampler struct {
	fs     procfs.FS
	fsErr  error // no /proc
	pid    int
	cpu0   procfs.ProcStat
	delay0 time.Duration

	// Written by run's goroutine only, read by finish after it ends.
	samples      int
	maxRSS       int64 // kB, sampled VmRSS
	maxTree      int64 // kB, sampled server + children
	maxChildren  int
	last         memory
	sampleErrors int
}

func newProcSampler(pid int) *procSampler {
	p := &procSampler{pid: pid}
	p.fs, p.fsErr = procfs.NewDefaultFS()
	p.cpu0, _ = p.stat()
	p.delay0, _ = runDelay(p.pid)
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
	m, err := p.memory()
	if err != nil {
		p.sampleErrors++
		return
	}
	p.samples++
	p.last = m
	p.maxRSS = max(p.maxRSS, m.rss)
	kids, n := childrenRSS(p.fs, p.pid)
	p.maxTree = max(p.maxTree, m.rss+kids)
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
		PeakRSSKB:       max(p.last.hwm, p.maxRSS),
		EndRSSKB:        p.last.rss,
		MaxSampledRSSKB: p.maxRSS,
		MaxTreeRSSKB:    p.maxTree,
		MaxChildren:     p.maxChildren,
		SampleErrors:    p.sampleErrors,
	}
	if d, err := runDelay(p.pid); err == nil {
		r.RunQueueSeconds = (d - p.delay0).Seconds()
	}
	if st, err := p.stat(); err == nil {
		r.ServerCPUSeconds = st.CPUTime() - p.cpu0.CPUTime()
		r.ChildCPUSeconds = float64(st.CUTime+st.CSTime-p.cpu0.CUTime-p.cpu0.CSTime) / userHZ
	}
	return r
}

// stat reads the followed process's /proc/<pid>/stat.
func (p *procSampler) stat() (procfs.ProcStat, error) {
	if p.fsErr != nil {
		return procfs.ProcStat{}, p.fsErr
	}
	proc, err := p.fs.Proc(p.pid)
	if err != nil {
		return procfs.ProcStat{}, err
	}
	return proc.Stat()
}

// memory reads VmRSS and VmHWM from the followed process's status.
func (p *procSampler) memory() (memory, error) {
	if p.fsErr != nil {
		return memory{}, p.fsErr
	}
	proc, err := p.fs.Proc(p.pid)
	if err != nil {
		return memory{}, err
	}
	st, err := proc.NewStatus()
	if err != nil {
		return memory{}, err
	}
	return memory{rss: int64(st.VmRSS / 1024), hwm: int64(st.VmHWM / 1024)}, nil
}

// childrenRSS sums the resident memory (kB) of pid's live direct children.
// procfs has no list of a process's children, so it reads every process's
// stat: 2-4 ms with a hundred processes on a 2-core machine, five times a
// second, 1-2 % of a core (see internal/robustness's BenchmarkChildren,
// whose sampler, 25 times a second, reads the children files instead).
func childrenRSS(fs procfs.FS, pid int) (kB int64, n int) {
	procs, err := fs.AllProcs()
	if err != nil {
		return 0, 0
	}
	page := int64(os.Getpagesize())
	for _, proc := range procs {
		st, err := proc.Stat()
		if err != nil || st.PPID != pid || st.State == "Z" {
			continue // exited meanwhile, someone else's, or gone but not reaped
		}
		kB += int64(st.RSS) * page / 1024
		n++
	}
	return kB, n
}

// runDelay is the total time pid's threads alive now have spent runnable
// but waiting for a CPU (the second field of each thread's schedstat).
func runDelay(pid int) (time.Duration, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, err
	}
	threads, err := fs.AllThreads(pid)
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, th := range threads {
		s, err := th.Schedstat()
		if err != nil {
			continue // the thread ended meanwhile
		}
		total += s.WaitingNanoseconds
	}
	return time.Duration(total), nil
}

// machineBusy is the machine's busy CPU seconds since boot from /proc/stat:
// all but idle and iowait (guest time is already counted in user and nice).
func machineBusy() (float64, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, err
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, err
	}
	c := st.CPUTotal
	return c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal, nil
}

// loadAvg is the 1-minute load average, or -1 if unknown.
func loadAvg() float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return -1
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return -1
	}
	return l.Load1
}
