// Package ffmpeg runs ffmpeg as a child process: started with a minimal
// environment, at a lowered priority, with a stdin pipe sized for the
// caller's writes; killed with anything it started and reaped, never
// signalled once reaped; kept started ahead of need (Spare); and probed for
// its version and abilities. It knows nothing of MP4 or of frames: the
// command line and the bytes on the pipes are the caller's.
package ffmpeg

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/whirl-dev/whirl/internal/nice"
)

// DefaultPath is the ffmpeg Command.Path names when it is empty.
const DefaultPath = "ffmpeg"

// MaxNice is the largest Command.Nice, the kernel's lowest priority.
const MaxNice = nice.Max

// stderrTail is how much of ffmpeg's stderr is kept for error messages.
const stderrTail = 4 << 10

// Command is one ffmpeg invocation.
type Command struct {
	// Path is the binary: a path, or a name looked up in PATH ("":
	// DefaultPath).
	Path string
	// Args follow argv[0].
	Args []string
	// Nice is added to this process's niceness for the child, as nice -n
	// does: 0..MaxNice. Applied on Linux only.
	Nice int
	// StdinBuffer, when positive, is the stdin pipe buffer to ask the
	// kernel for (Linux caps it at /proc/sys/fs/pipe-max-size).
	StdinBuffer int
}

// key is c as a comparable value: two Commands with the same key start
// the same process.
func (c Command) key() string {
	var b strings.Builder
	for _, s := range append([]string{c.path(), strconv.Itoa(c.Nice), strconv.Itoa(c.StdinBuffer)}, c.Args...) {
		b.WriteString(strconv.Quote(s))
		b.WriteByte(' ')
	}
	return b.String()
}

func (c Command) path() string {
	if c.Path == "" {
		return DefaultPath
	}
	return c.Path
}

// Process is one running ffmpeg child and nothing more: its stdin and
// stdout pipes, the tail of its stderr, killing it and reaping it.
// Processes share no state, so a caller may run several at once.
//
// Kill and Wait may be called from any goroutine, any number of times.
type Process struct {
	cmd    *exec.Cmd
	stdin  *os.File // our end of ffmpeg's stdin
	stdout *os.File // our end of ffmpeg's stdout
	stderr *tail

	killc    chan struct{} // closed by the first Kill
	reapOnce sync.Once
	exitErr  error // cmd.Wait's result; set inside reapOnce

	// mu orders Kill against reaping: once the child is reaped its pid
	// (and process group id) may belong to someone else. reaped is set,
	// under mu, after the child has exited and before it is reaped.
	mu     sync.Mutex
	killed bool
	reaped bool

	// Tests only: killGroup replaces signalling the process group, and
	// onReaped runs right after the kernel has reaped the child.
	killGroup func(pgid int)
	onReaped  func()
}

// Start starts c and returns at once. The child gets a minimal
// environment (Env), never this process's secrets.
func Start(c Command) (*Process, error) {
	if c.Nice < 0 || c.Nice > MaxNice {
		return nil, fmt.Errorf("ffmpeg: nice %d: must be in 0..%d", c.Nice, MaxNice)
	}
	cmd := exec.Command(c.path(), c.Args...)
	cmd.Env = Env(os.Environ())
	setProcAttr(cmd)
	// Wait gives up on stderr this long after the child exits, in case
	// something it started still holds the pipe.
	cmd.WaitDelay = 2 * time.Second
	p := &Process{cmd: cmd, stderr: newTail(stderrTail), killc: make(chan struct{})}
	cmd.Stderr = p.stderr
	// Own pipes rather than cmd.StdinPipe/StdoutPipe: Wait closes those as
	// soon as the child exits, which would cut off output still buffered
	// in the pipe and turn a write to a dead ffmpeg into "file closed".
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	if c.StdinBuffer > 0 {
		growPipe(stdinW, c.StdinBuffer)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		_, _ = stdinR.Close(), stdinW.Close()
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	err = startNiced(cmd, c.Nice)
	// the child has its own copies of these ends now
	_, _ = stdinR.Close(), stdoutW.Close()
	if err != nil {
		_, _ = stdinW.Close(), stdoutR.Close()
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ffmpeg: %w", NotFound(c.path(), err))
		}
		return nil, fmt.Errorf("ffmpeg: starting %s: %w", c.path(), err)
	}
	p.stdin, p.stdout = stdinW, stdoutR
	return p, nil
}

// Env is the environment ffmpeg runs with, taken from parent: PATH and the
// locale (LANG, LANGUAGE, LC_*), nothing else, so that no secret of the
// server's (an admin token, etcd credentials) reaches the child or its
// /proc/PID/environ; and AV_LOG_FORCE_NOCOLOR=1 for plain stderr.
func Env(parent []string) []string {
	var env []string
	for _, kv := range parent {
		name, _, _ := strings.Cut(kv, "=")
		if name == "PATH" || name == "LANG" || name == "LANGUAGE" || strings.HasPrefix(name, "LC_") {
			env = append(env, kv)
		}
	}
	return append(env, "AV_LOG_FORCE_NOCOLOR=1")
}

// PID is the process id of the ffmpeg child.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Stdin is ffmpeg's input. Closing it ends the input; ffmpeg then flushes
// its output and exits.
func (p *Process) Stdin() io.WriteCloser { return p.stdin }

// Stdout is ffmpeg's output. It stays readable after the child exits, until
// everything ffmpeg wrote has been read; the reader closes it.
func (p *Process) Stdout() io.ReadCloser { return p.stdout }

// Kill sends SIGKILL to ffmpeg and anything it started, unless it has been
// reaped already (or is being reaped: it has exited).
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed {
		return
	}
	p.killed = true
	close(p.killc)
	if !p.reaped {
		killGroup := p.killGroup
		if killGroup == nil {
			killGroup = signalGroup
		}
		killGroup(p.cmd.Process.Pid)
	}
	// through the process handle, which Go backs with a pidfd on Linux:
	// it cannot reach another process, reaped or not
	_ = p.cmd.Process.Kill()
}

// Killed is closed by the first Kill.
func (p *Process) Killed() <-chan struct{} { return p.killc }

// Wait waits for ffmpeg to exit, reaps it and returns its exit status (nil
// for a clean exit). Every call returns the same status; later calls wait
// for the first. The pipes stay open: output may still be buffered in
// stdout, and whoever writes stdin closes it.
func (p *Process) Wait() error {
	p.reapOnce.Do(func() {
		// The child is left a zombie: its pid and group id stay its own
		// until cmd.Wait reaps it below, and from here on Kill sends
		// nothing to the group.
		exited := waitExited(p.cmd.Process.Pid)
		if exited {
			p.setReaped()
		}
		p.exitErr = p.cmd.Wait()
		if !exited {
			p.setReaped()
		}
		if p.onReaped != nil {
			p.onReaped()
		}
	})
	return p.exitErr
}

func (p *Process) setReaped() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaped = true
}

// StderrNote is "; ffmpeg stderr: …" with the tail of ffmpeg's stderr, or
// "" if it wrote nothing there. It reads whatever has arrived so far; after
// Wait that is all of it.
func (p *Process) StderrNote() string {
	if s := p.stderr.String(); s != "" {
		return "; ffmpeg stderr: " + s
	}
	return ""
}

// Stop kills ffmpeg, reaps it and closes both pipes: for a process that
// nobody reads or feeds.
func (p *Process) Stop() {
	p.Kill()
	_ = p.Wait()
	_, _ = p.stdin.Close(), p.stdout.Close()
}
