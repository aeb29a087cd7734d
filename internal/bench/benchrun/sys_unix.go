//go:build unix

package benchrun

import (
	"fmt"
	"syscall"
)

// allocOffHeap maps n bytes of anonymous memory that the Go garbage collector
// neither counts nor scans.
func allocOffHeap(n int) ([]byte, func(), error) {
	if n == 0 {
		return nil, func() {}, nil
	}
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	return b, func() { _ = syscall.Munmap(b) }, nil
}

// cpuTimes is user+system CPU seconds of this process and of its reaped
// children.
type cpuTimes struct{ self, children float64 }

func readCPU() cpuTimes {
	sec := func(who int) float64 {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) != nil {
			return 0
		}
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	return cpuTimes{self: sec(syscall.RUSAGE_SELF), children: sec(syscall.RUSAGE_CHILDREN)}
}
