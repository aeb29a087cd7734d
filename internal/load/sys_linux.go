package main

import (
	"syscall"
)

// dieWithParent makes the server child get SIGKILL if the load command dies
// without stopping it. With ownSession it also starts the child in a new
// session: with the kernel's autogroup scheduling (sched_autogroup_enabled)
// each session gets its own fair CPU share, so the server and its ffmpeg
// children then compete with the load generator as a separate program
// would, instead of sharing one share with it.
func dieWithParent(ownSession bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: ownSession}
}
