package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"time"
)

// procSampler follows one process (the server) through /proc: its resident
// memory, the resident memory of its direct children (the ffmpeg encoders),
// and its CPU time. Outside Linux every figure stays zero.
type procSampler struct {
	pid    int
	cpu0   procCPU
	delay0 time.Duration

	// Written by run's goroutine only, read by finish after it ends.
	samples      int
	maxRSS       int64 // kB, sampled VmRSS
	maxTree      int64 // kB, sampled server + children
	maxChildren  int
	lastRSS      int64
	lastHWM      int64
	sampleErrors int
}

// procCPU is clock ticks from /proc/<pid>/stat: the process itself, and its
// reaped children.
type procCPU struct{ self, children int64 }

// userHZ is the unit of /proc/<pid>/stat times; 100 on every Linux
// architecture Go supports.
const userHZ = 100

func newProcSampler(pid int) *procSampler {
	p := &procSampler{pid: pid}
	p.cpu0, _ = readProcCPU(pid)
	p.delay0, _ = runDelay(pid)
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
	rss, hwm, err := readRSS(p.pid)
	if err != nil {
		p.sampleErrors++
		return
	}
	p.samples++
	p.lastRSS, p.lastHWM = rss, hwm
	p.maxRSS = max(p.maxRSS, rss)
	kids, n := childrenRSS(p.pid)
	p.maxTree = max(p.maxTree, rss+kids)
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
		PeakRSSKB:       max(p.lastHWM, p.maxRSS),
		EndRSSKB:        p.lastRSS,
		MaxSampledRSSKB: p.maxRSS,
		MaxTreeRSSKB:    p.maxTree,
		MaxChildren:     p.maxChildren,
		SampleErrors:    p.sampleErrors,
	}
	if d, err := runDelay(p.pid); err == nil {
		r.RunQueueSeconds = (d - p.delay0).Seconds()
	}
	if cpu, err := readProcCPU(p.pid); err == nil {
		r.ServerCPUSeconds = float64(cpu.self-p.cpu0.self) / userHZ
		r.ChildCPUSeconds = float64(cpu.children-p.cpu0.children) / userHZ
	}
	return r
}

// readRSS returns VmRSS and VmHWM in kB.
func readRSS(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			rss = parseKB(v)
		case "VmHWM":
			hwm = parseKB(v)
		}
	}
	return rss, hwm, nil
}

func parseKB(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n
}

// statFields returns the fields of /proc/<pid>/stat after the command name
// (field 3, the state, is index 0).
func statFields(pid string) ([]string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, os.ErrInvalid
	}
	return strings.Fields(string(b[i+1:])), nil
}

func readProcCPU(pid int) (procCPU, error) {
	f, err := statFields(strconv.Itoa(pid))
	if err != nil {
		return procCPU{}, err
	}
	if len(f) < 15 {
		return procCPU{}, os.ErrInvalid
	}
	// utime, stime, cutime, cstime are fields 14-17.
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i-3], 10, 64); return v }
	return procCPU{self: n(14) + n(15), children: n(16) + n(17)}, nil
}

// childrenRSS sums the resident memory (kB) of pid's direct children. It
// reads the children lists of pid's threads (/proc/<pid>/task/*/children),
// which is far cheaper than scanning every process; without them it falls
// back to the scan.
func childrenRSS(pid int) (kB int64, n int) {
	page := int64(os.Getpagesize()) / 1024
	kids, ok := childPIDs(pid)
	if !ok {
		return scanChildrenRSS(pid, page)
	}
	for _, k := range kids {
		b, err := os.ReadFile("/proc/" + k + "/statm")
		if err != nil {
			continue // exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		pages, _ := strconv.ParseInt(f[1], 10, 64)
		kB += pages * page
		n++
	}
	return kB, n
}

func childPIDs(pid int) ([]string, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	var kids []string
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			if os.IsNotExist(err) {
				return nil, false // kernel without CONFIG_PROC_CHILDREN
			}
			continue // thread gone
		}
		kids = append(kids, strings.Fields(string(b))...)
	}
	return kids, true
}

func scanChildrenRSS(pid int, page int64) (kB int64, n int) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	want := strconv.Itoa(pid)
	for _, e := range ents {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		f, err := statFields(name)
		if err != nil || len(f) < 22 || f[1] != want {
			continue
		}
		// rss (field 24) is in pages.
		pages, _ := strconv.ParseInt(f[21], 10, 64)
		kB += pages * page
		n++
	}
	return kB, n
}

// machineCPU is the whole machine's busy and total CPU ticks, from the
// first line of /proc/stat.
type machineCPU struct{ busy, total int64 }

func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return machineCPU{}, os.ErrInvalid
	}
	var m machineCPU
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		// guest and guest_nice (fields 9, 10) are already in user and nice.
		if i >= 8 {
			break
		}
		m.total += n
		if i != 3 && i != 4 { // idle, iowait
			m.busy += n
		}
	}
	return m, nil
}

// loadAvg is the 1-minute load average, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// runDelay is the total time pid's threads have spent runnable but waiting
// for a CPU (field 2 of /proc/<pid>/task/*/schedstat), summed over the
// threads alive now.
func runDelay(pid int) (time.Duration, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		total += n
	}
	return time.Duration(total), nil
}
