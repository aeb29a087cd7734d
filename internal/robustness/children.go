package robustness

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// errNoChildrenFiles is a kernel built without CONFIG_PROC_CHILDREN.
var errNoChildrenFiles = errors.New("robustness: no /proc/<pid>/task/<tid>/children files")

// childPIDs lists pid's direct children, zombies included. It reads the
// children files of pid's threads, which github.com/prometheus/procfs does
// not read (it has no children list), and falls back to scanning every
// process's stat for its parent on a kernel without them.
//
// The files are kept for cost. The sampler counts each replica's encoders
// 25 times a second, and the scan reads and parses one stat file per
// process on the machine: on the 2-core test machine (AMD EPYC, Linux 6.18,
// 94 processes, under other builds) BenchmarkChildren measured 1.9-3.9 ms a
// scan against 74-92 µs for the files of a 5-thread process, so scanning
// for two replicas would take 9-19 % of a core where the files take 0.4 %.
func childPIDs(fs procfs.FS, pid int) []int {
	kids, err := childrenFiles(pid)
	if errors.Is(err, errNoChildrenFiles) {
		return scanChildren(fs, pid)
	}
	return kids
}

// childrenFiles reads /proc/<pid>/task/*/children: the children each of
// pid's threads started. A pid that is gone has none.
func childrenFiles(pid int) ([]int, error) {
	dir := filepath.Join(procfs.DefaultMountPoint, strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "children"))
		if errors.Is(err, os.ErrNotExist) {
			if _, terr := os.Stat(filepath.Join(dir, t.Name())); terr == nil {
				return nil, errNoChildrenFiles // the thread is there, its file is not
			}
			continue // the thread ended meanwhile
		}
		if err != nil {
			continue
		}
		for f := range strings.FieldsSeq(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids, nil
}

// scanChildren finds pid's children by reading the parent of every
// process in the table.
func scanChildren(fs procfs.FS, pid int) []int {
	procs, err := fs.AllProcs()
	if err != nil {
		return nil
	}
	var kids []int
	for _, p := range procs {
		if st, err := p.Stat(); err == nil && st.PPID == pid {
			kids = append(kids, p.PID)
		}
	}
	return kids
}
