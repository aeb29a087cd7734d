package procfs_test

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/procfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func skipOutsideLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
}

// TestStatOfAChild: a child started here reads back with its pid, parent,
// process group, name (spaces and parentheses included) and state, then as
// a zombie once it exits, and as gone once reaped.
func TestStatOfAChild(t *testing.T) {
	skipOutsideLinux(t)
	dir := t.TempDir()
	name := dir + "/a (b) c"
	if err := os.Symlink("/bin/sleep", name); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	st, err := procfs.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	self, err := procfs.ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != pid || st.PPID != os.Getpid() || st.PGRP != self.PGRP || st.Comm != "a (b) c" || st.Zombie() || st.Nice != self.Nice {
		t.Errorf("child stat %+v (this process %+v)", st, self)
	}
	if !procfs.Alive(pid) {
		t.Error("running child not alive")
	}
	kids, ok := procfs.Children(os.Getpid())
	found := false
	for _, k := range kids {
		found = found || k == pid
	}
	if ok && !found {
		t.Errorf("Children(self) = %v, lacks %d", kids, pid)
	}
	listed, err := procfs.Processes(func(s procfs.Stat) bool { return s.PPID == os.Getpid() })
	if err != nil || len(listed) == 0 {
		t.Errorf("Processes: %v %v", listed, err)
	}

	_ = cmd.Process.Kill()
	// Killed but not yet reaped: a zombie, in the table but not alive.
	for {
		st, err = procfs.ReadStat(pid)
		if err != nil || st.Zombie() {
			break
		}
		runtime.Gosched()
	}
	if err != nil || procfs.Alive(pid) || !procfs.Exists(pid) {
		t.Errorf("killed child: %+v, %v; alive %v, exists %v", st, err, procfs.Alive(pid), procfs.Exists(pid))
	}
	_ = cmd.Wait()
	if procfs.Exists(pid) {
		t.Error("reaped child still in the process table")
	}
	if _, err := procfs.ReadStat(pid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of a reaped child: %v", err)
	}
}

func TestThreadsAndUsage(t *testing.T) {
	skipOutsideLinux(t)
	threads, err := procfs.ReadThreadStats(os.Getpid())
	if err != nil || len(threads) == 0 {
		t.Fatalf("threads: %v %v", threads, err)
	}
	if _, ok := threads[os.Getpid()]; !ok {
		t.Errorf("the main thread %d is not among %v", os.Getpid(), threads)
	}
	m, err := procfs.ReadMemory(os.Getpid())
	if err != nil || m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("memory %+v, %v", m, err)
	}
	if kb, err := procfs.ResidentKB(os.Getpid()); err != nil || kb <= 0 {
		t.Errorf("statm: %d kB, %v", kb, err)
	}
	if _, err := procfs.RunDelay(os.Getpid()); err != nil {
		t.Error(err)
	}
	if c, err := procfs.ReadMachineCPU(); err != nil || c.Total <= 0 || c.Busy > c.Total {
		t.Errorf("machine CPU %+v, %v", c, err)
	}
	if l, err := procfs.LoadAvg(); err != nil || l < 0 {
		t.Errorf("load average %v, %v", l, err)
	}
}
