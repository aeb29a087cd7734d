package nice

import (
	"fmt"
	"runtime"
	"syscall"
)

// Run calls f on an OS thread of its own whose niceness is n above this
// process's (at most Max), and returns f's error; n 0 calls f as it is.
// Linux keeps niceness per thread, and a child process starts with that of
// the thread that forked it, so a child started by f carries the niceness
// from its first instruction. The thread is thrown away afterwards (its
// goroutine exits still locked to it), because an unprivileged process may
// not raise a thread's priority back.
func Run(n int, f func() error) error {
	if n == 0 {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if syscall.Gettid() == syscall.Getpid() {
			// The runtime cannot end the main thread: it would park it for
			// good, lowered. While this goroutine holds the main thread,
			// the one the nested call starts runs on another.
			defer runtime.UnlockOSThread()
			errc <- Run(n, f)
			return
		}
		// Never unlocked from here on: the runtime ends the thread with
		// this goroutine. The raw syscall reports 20 − niceness.
		raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
		if err != nil {
			errc <- fmt.Errorf("reading niceness: %w", err)
			return
		}
		target := min(20-raw+n, Max)
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, target); err != nil {
			errc <- fmt.Errorf("setting niceness %d: %w", target, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
