// Package procfs reads the few Linux /proc files whirl looks at: a
// process's stat line (state, parent, process group, niceness, CPU times),
// its threads, its memory, its children and run-queue delay, and the
// machine's CPU counters and load. The tests that inspect the server and
// its ffmpeg children and the load command's samplers all read /proc
// through it. Outside Linux every read fails (there is no /proc).
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// UserHZ is the unit of the CPU times in /proc/<pid>/stat and /proc/stat:
// 100 on every Linux architecture Go supports.
const UserHZ = 100

// ErrMalformed is a /proc file that does not read as the kernel documents.
var ErrMalformed = errors.New("procfs: malformed file")

// Stat is the part of /proc/<pid>/stat (or of a thread's
// /proc/<pid>/task/<tid>/stat) that whirl uses. Field numbers are those of
// proc(5).
type Stat struct {
	PID int
	// Comm is the command name (field 2), without its parentheses.
	Comm string
	// State is the one-letter state (field 3): R, S, D, Z, ...
	State string
	// PPID and PGRP are the parent (field 4) and process group (field 5).
	PPID, PGRP int
	// UTime, STime, CUTime and CSTime are CPU times in UserHZ ticks
	// (fields 14-17): the process's own and its reaped children's.
	UTime, STime, CUTime, CSTime int64
	// Nice is the niceness (field 19).
	Nice int
	// RSSPages is the resident set in pages (field 24).
	RSSPages int64
}

// Zombie reports whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == "Z" }

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	return readStat(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
}

// ReadThreadStats reads the stat line of every thread of pid, by thread id.
// Threads that end while it reads are left out.
func ReadThreadStats(pid int) (map[int]Stat, error) {
	paths, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "stat"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("procfs: no threads listed for pid %d", pid)
	}
	out := make(map[int]Stat, len(paths))
	for _, p := range paths {
		st, err := readStat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[st.PID] = st
	}
	return out, nil
}

func readStat(path string) (Stat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	return parseStat(b)
}

// parseStat parses a stat line. The command name may hold spaces and
// parentheses, so the fields are counted from its last ')'.
func parseStat(b []byte) (Stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, ErrMalformed
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 22 { // through field 24, rss
		return Stat{}, ErrMalformed
	}
	// f[0] is field 3.
	field := func(n int) int64 {
		v, err := strconv.ParseInt(f[n-3], 10, 64)
		if err != nil {
			return 0
		}
		return v
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return Stat{}, ErrMalformed
	}
	return Stat{
		PID: pid, Comm: string(b[open+1 : end]), State: f[0],
		PPID: int(field(4)), PGRP: int(field(5)),
		UTime: field(14), STime: field(15), CUTime: field(16), CSTime: field(17),
		Nice: int(field(19)), RSSPages: field(24),
	}, nil
}

// Exists reports whether pid is in the process table, zombie or not.
func Exists(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && !st.Zombie()
}

// Processes returns the stat of every live (non-zombie) process for which
// keep returns true.
func Processes(keep func(Stat) bool) ([]Stat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil || st.Zombie() {
			continue // gone meanwhile, or gone but not reaped
		}
		if keep(st) {
			out = append(out, st)
		}
	}
	return out, nil
}
