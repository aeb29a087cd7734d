//go:build unix

package protocolbench

import "syscall"

// processCPU is the CPU seconds (user+system) this process has used: the
// server and the client live here, ffmpeg (the same for every protocol)
// does not.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
