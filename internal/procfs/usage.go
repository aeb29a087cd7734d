package procfs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Memory is a process's resident memory from /proc/<pid>/status, in kB.
type Memory struct {
	// RSS is VmRSS, the resident set now.
	RSS int64
	// HWM is VmHWM, the kernel's high-water mark of RSS.
	HWM int64
}

// ReadMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = parseKB(v)
		case "VmHWM":
			m.HWM = parseKB(v)
		}
	}
	return m, nil
}

func parseKB(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n
}

// ResidentKB is pid's resident memory in kB from /proc/<pid>/statm, which
// is cheaper to read than status.
func ResidentKB(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "statm"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, ErrMalformed
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, ErrMalformed
	}
	return pages * int64(os.Getpagesize()) / 1024, nil
}

// Children lists pid's direct children from the children files of its
// threads (/proc/<pid>/task/*/children), which is far cheaper than scanning
// every process. ok is false when the kernel has no such files
// (CONFIG_PROC_CHILDREN off): scan with Processes instead.
func Children(pid int) (kids []int, ok bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "children"))
		if os.IsNotExist(err) {
			// No such file: a kernel without it (or a thread that ended
			// just now; the scan is right either way).
			return nil, false
		}
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids, true
}

// RunDelay is the total time pid's threads alive now have spent runnable
// but waiting for a CPU (field 2 of /proc/<pid>/task/*/schedstat).
func RunDelay(pid int) (time.Duration, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended meanwhile
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

// MachineCPU is the whole machine's busy and total CPU time in UserHZ
// ticks, from the first line of /proc/stat.
type MachineCPU struct{ Busy, Total int64 }

// ReadMachineCPU reads the first line of /proc/stat.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return MachineCPU{}, ErrMalformed
	}
	var m MachineCPU
	for i, v := range f[1:] {
		// guest and guest_nice (the 9th and 10th) are already counted in
		// user and nice.
		if i >= 8 {
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		m.Total += n
		if i != 3 && i != 4 { // idle, iowait
			m.Busy += n
		}
	}
	return m, nil
}

// LoadAvg is the 1-minute load average from /proc/loadavg.
func LoadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, ErrMalformed
	}
	return strconv.ParseFloat(f[0], 64)
}
