package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server child get SIGKILL if the load command dies
// without stopping it. With ownSession it also starts the child in a new
// session: with the kernel's autogroup scheduling (sched_autogroup_enabled)
// each session gets its own fair CPU share, so the server and its ffmpeg
// children then compete with the load generator as a separate program
// would, instead of sharing one share with it.
func dieWithParent(cmd *exec.Cmd, ownSession bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: ownSession}
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
