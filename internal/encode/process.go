package encode

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/whirl-dev/whirl/internal/i420"
)

// stderrTail is how much of ffmpeg's stderr is kept for error messages.
const stderrTail = 4 << 10

// Process is one running ffmpeg child and nothing more: its stdin and stdout
// pipes, the tail of its stderr, killing it and reaping it. It knows nothing
// of frames or MP4; an Encoder feeds and reads it. Processes share no state,
// so one render may run several at once.
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
	// (and process group id) may belong to someone else.
	mu     sync.Mutex
	killed bool
	reaped bool
}

// StartProcess starts ffmpeg for o (after filling o's defaults and
// validating it) and returns at once. ffmpeg sits blocked on its stdin until
// the first frame arrives; it writes nothing before.
func StartProcess(o Options) (*Process, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return startProcess(o)
}

// startProcess is StartProcess for options already validated.
func startProcess(o Options) (*Process, error) {
	cmd := exec.Command(o.FFmpegPath, args(o)...)
	cmd.Env = append(os.Environ(), "AV_LOG_FORCE_NOCOLOR=1")
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
		return nil, fmt.Errorf("encode: %w", err)
	}
	growPipe(stdinW, i420.Size(o.Width, o.Height))
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		_, _ = stdinR.Close(), stdinW.Close()
		return nil, fmt.Errorf("encode: %w", err)
	}
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	err = startNiced(cmd, o.Nice)
	// the child has its own copies of these ends now
	_, _ = stdinR.Close(), stdoutW.Close()
	if err != nil {
		_, _ = stdinW.Close(), stdoutR.Close()
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("encode: %w", notFound(o.FFmpegPath, err))
		}
		return nil, fmt.Errorf("encode: starting %s: %w", o.FFmpegPath, err)
	}
	p.stdin, p.stdout = stdinW, stdoutR
	return p, nil
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
// reaped already.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed {
		return
	}
	p.killed = true
	close(p.killc)
	if !p.reaped {
		killTree(p.cmd.Process)
	}
}

// dying is closed by the first Kill.
func (p *Process) dying() <-chan struct{} { return p.killc }

// Wait waits for ffmpeg to exit, reaps it and returns its exit status (nil
// for a clean exit). Every call returns the same status; later calls wait
// for the first. The pipes stay open: output may still be buffered in
// stdout, and whoever writes stdin closes it.
func (p *Process) Wait() error {
	p.reapOnce.Do(func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.reaped = true
		p.mu.Unlock()
		p.exitErr = err
	})
	return p.exitErr
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
