package encode

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// startNiced starts cmd with its niceness raised by nice. Linux keeps
// niceness per thread and a child starts with that of the thread that
// forked it, so the fork happens on a thread of its own, lowered first: the
// child and every thread ffmpeg starts carry the niceness from their first
// instruction, with no window at full priority. The thread is then thrown
// away (its goroutine exits still locked to it) because an unprivileged
// process may not raise a thread's priority back.
func startNiced(cmd *exec.Cmd, nice int) error {
	if nice == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if syscall.Gettid() == syscall.Getpid() {
			// The runtime cannot end the main thread: it would park it for
			// good, lowered. While this goroutine holds the main thread,
			// the one the nested call starts runs on another.
			defer runtime.UnlockOSThread()
			errc <- startNiced(cmd, nice)
			return
		}
		// Never unlocked from here on: the runtime ends the thread with
		// this goroutine. The raw syscall reports 20 − niceness.
		raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
		if err != nil {
			errc <- fmt.Errorf("reading niceness: %w", err)
			return
		}
		target := min(20-raw+nice, MaxNice)
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, target); err != nil {
			errc <- fmt.Errorf("setting niceness %d: %w", target, err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}
