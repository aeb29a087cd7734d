package robustness

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"

	"github.com/prometheus/procfs"
)

// startSleepers starts n children of this process that sleep until killed.
func startSleepers(tb testing.TB, n int) []int {
	tb.Helper()
	var pids []int
	for range n {
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		pids = append(pids, cmd.Process.Pid)
	}
	return pids
}

func defaultFS(tb testing.TB) procfs.FS {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skip("/proc is Linux's")
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		tb.Fatal(err)
	}
	return fs
}

// TestChildPIDs: the children files and the scan both list the children
// this process started, and neither lists one once it is reaped.
func TestChildPIDs(t *testing.T) {
	fs := defaultFS(t)
	kids := startSleepers(t, 3)
	for _, tc := range []struct {
		name string
		list func() []int
	}{
		{"childPIDs", func() []int { return childPIDs(fs, os.Getpid()) }},
		{"children files", func() []int {
			k, err := childrenFiles(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			return k
		}},
		{"scan", func() []int { return scanChildren(fs, os.Getpid()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.list()
			for _, k := range kids {
				if !slices.Contains(got, k) {
					t.Errorf("children %v lack %d (started %v)", got, k, kids)
				}
			}
		})
	}

	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if got := childPIDs(fs, os.Getpid()); slices.Contains(got, pid) {
		t.Errorf("reaped child %d still listed: %v", pid, got)
	}
	if got := childPIDs(fs, pid); len(got) != 0 {
		t.Errorf("a pid that is gone has children %v", got)
	}
}

// BenchmarkChildren compares the two ways of finding a process's children:
// its threads' children files, and a scan of every process's stat. It
// reports the processes on the machine and this process's threads, which
// the two costs grow with.
//
//	go test -run '^$' -bench Children -benchtime 3s ./internal/robustness/
func BenchmarkChildren(b *testing.B) {
	fs := defaultFS(b)
	kids := startSleepers(b, 3)
	procs, err := fs.AllProcs()
	if err != nil {
		b.Fatal(err)
	}
	threads, err := fs.AllThreads(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		list func() []int
	}{
		{"files", func() []int { k, _ := childrenFiles(os.Getpid()); return k }},
		{"scan", func() []int { return scanChildren(fs, os.Getpid()) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if got := bc.list(); len(got) < len(kids) {
					b.Fatalf("found %v, started %v", got, kids)
				}
			}
			b.ReportMetric(float64(len(procs)), "procs")
			b.ReportMetric(float64(len(threads)), "threads")
		})
	}
}
