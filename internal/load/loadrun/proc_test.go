package loadrun

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// TestProcSampler follows this process with two children: the figures
// read from /proc come back non-zero and in their units (kB, seconds), and
// the children's CPU shows once a child that worked is reaped.
func TestProcSampler(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	p := newProcSampler(os.Getpid())
	if p.fsErr != nil {
		t.Fatal(p.fsErr)
	}
	for range 2 {
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	p.sample()
	// Work until the kernel has counted a tick of this process's CPU, and
	// reap a child that worked until one of its ticks is counted too.
	for st, _ := p.stat(); st.UTime+st.STime == p.cpu0.UTime+p.cpu0.STime; st, _ = p.stat() {
		spin()
	}
	for i := 0; ; i++ {
		st, _ := p.stat()
		if st.CUTime+st.CSTime > p.cpu0.CUTime+p.cpu0.CSTime {
			break
		}
		if i == 50 {
			t.Fatal("no child CPU counted after 50 working children")
		}
		if err := exec.Command("sh", "-c", "head -c 50000000 /dev/zero | cksum").Run(); err != nil {
			t.Fatal(err)
		}
	}
	r := p.finish()
	if r.Samples != 2 || r.SampleErrors != 0 {
		t.Errorf("%d samples, %d errors, want 2 and none", r.Samples, r.SampleErrors)
	}
	// The resident set of a Go test binary is megabytes, not bytes or GB.
	if r.EndRSSKB < 1<<10 || r.EndRSSKB > 1<<22 || r.PeakRSSKB < r.MaxSampledRSSKB {
		t.Errorf("RSS %d kB at the end, peak %d kB, largest sample %d kB", r.EndRSSKB, r.PeakRSSKB, r.MaxSampledRSSKB)
	}
	if r.MaxChildren < 2 || r.MaxTreeRSSKB <= r.MaxSampledRSSKB {
		t.Errorf("children: at most %d seen, tree %d kB over own %d kB", r.MaxChildren, r.MaxTreeRSSKB, r.MaxSampledRSSKB)
	}
	if r.ServerCPUSeconds <= 0 || r.ChildCPUSeconds <= 0 || r.RunQueueSeconds < 0 {
		t.Errorf("CPU %v s, children's %v s, run queue %v s", r.ServerCPUSeconds, r.ChildCPUSeconds, r.RunQueueSeconds)
	}
	if busy, err := machineBusy(); err != nil || busy <= 0 {
		t.Errorf("machine busy %v s, %v", busy, err)
	}
	if l := loadAvg(); l < 0 {
		t.Errorf("load average %v", l)
	}
}

// spin burns a little CPU.
func spin() {
	x := 0
	for i := range 1_000_000 {
		x += i
	}
	runtime.KeepAlive(x)
}
