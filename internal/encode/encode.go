// Package encode turns raw frames into fragmented MP4 (H.264) by running
// ffmpeg with libx264 as a child process: planar I420 frames go in on its
// stdin, and a reader cuts its stdout into an init segment (ftyp+moov) and
// media segments (moof+mdat) that are handed to a sink as soon as each is
// complete, so a caller can stream the video while it is still being drawn.
//
// The child lives and dies with the context given to Start: cancelling it
// kills ffmpeg and reaps it. Output is bit-exact: the same frames with the
// same Options give the same bytes, whatever else runs on the machine.
//
// The package knows nothing of gRPC or protobuf.
package encode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults, chosen by measurement (BenchmarkPresets and TestFirstFragment in
// this package; figures from one run on the 2-vCPU AMD EPYC machine class,
// 720×720, 30 fps, 300 frames of synth frames, GOP 60, threads 2).
//
// See MEASUREMENTS.md in this directory for the full tables.
const (
	DefaultFFmpegPath       = "ffmpeg"
	DefaultPreset           = "veryfast"
	DefaultCRF              = 23
	DefaultGOPSeconds       = 2
	DefaultFragmentDuration = 100 * time.Millisecond
	DefaultThreads          = 2
)

// Presets are the libx264 presets Options.Preset accepts.
func Presets() []string {
	return []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
}

// Options configure one encode. Width, Height and FPS are required; zero
// values of the other fields mean the defaults above.
type Options struct {
	// FFmpegPath is the ffmpeg binary: a path, or a name looked up in PATH.
	FFmpegPath string
	// Width and Height of every frame in pixels; both must be even (4:2:0).
	Width, Height int
	// FPS is the frame rate written into the stream.
	FPS int
	// Frames, when positive, is the exact number of frames the caller will
	// write: WriteFrame refuses more and Close reports fewer as an error.
	Frames int
	// Preset is the libx264 preset (see Presets).
	Preset string
	// CRF is the libx264 constant rate factor, 1–51 (lower: better, bigger).
	CRF int
	// GOP is the fixed distance between keyframes in frames (no scene-cut
	// keyframes). Default: DefaultGOPSeconds×FPS.
	GOP int
	// FragmentDuration is the longest media segment; segments are also cut
	// at every keyframe. Shorter fragments reach a client sooner and cost a
	// little size (a moof per fragment).
	FragmentDuration time.Duration
	// Threads is libx264's thread count. It is pinned rather than derived
	// from the CPU count because the output bytes depend on it.
	Threads int
}

// withDefaults fills zero fields and validates the result.
func (o Options) withDefaults() (Options, error) {
	if o.FFmpegPath == "" {
		o.FFmpegPath = DefaultFFmpegPath
	}
	if o.Preset == "" {
		o.Preset = DefaultPreset
	}
	if o.CRF == 0 {
		o.CRF = DefaultCRF
	}
	if o.GOP == 0 && o.FPS > 0 {
		o.GOP = DefaultGOPSeconds * o.FPS
	}
	if o.FragmentDuration == 0 {
		o.FragmentDuration = DefaultFragmentDuration
	}
	if o.Threads == 0 {
		o.Threads = DefaultThreads
	}
	var errs []error
	if o.Width <= 0 || o.Height <= 0 || o.Width%2 != 0 || o.Height%2 != 0 || o.Width > 8192 || o.Height > 8192 {
		errs = append(errs, fmt.Errorf("size %dx%d: width and height must be even and in 2..8192", o.Width, o.Height))
	}
	if o.FPS <= 0 || o.FPS > 240 {
		errs = append(errs, fmt.Errorf("fps %d: must be in 1..240", o.FPS))
	}
	if o.Frames < 0 {
		errs = append(errs, fmt.Errorf("frames %d: must not be negative", o.Frames))
	}
	if !slices.Contains(Presets(), o.Preset) {
		errs = append(errs, fmt.Errorf("preset %q: must be one of %v", o.Preset, Presets()))
	}
	if o.CRF < 1 || o.CRF > 51 {
		errs = append(errs, fmt.Errorf("crf %d: must be in 1..51", o.CRF))
	}
	if o.GOP < 1 {
		errs = append(errs, fmt.Errorf("gop %d: must be positive", o.GOP))
	}
	if o.FragmentDuration < time.Millisecond {
		errs = append(errs, fmt.Errorf("fragment duration %v: must be at least 1ms", o.FragmentDuration))
	}
	if o.Threads < 1 || o.Threads > 64 {
		errs = append(errs, fmt.Errorf("threads %d: must be in 1..64", o.Threads))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("encode: invalid options: %w", err)
	}
	return o, nil
}

// FrameSize is the size in bytes of one planar I420 frame of w×h (even).
func FrameSize(w, h int) int { return w*h + 2*(w/2)*(h/2) }

// args builds ffmpeg's command line (without argv[0]).
func args(o Options) []string {
	return []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
		// input: raw planar 4:2:0 frames on stdin
		"-f", "rawvideo", "-pix_fmt", "yuv420p",
		"-video_size", strconv.Itoa(o.Width) + "x" + strconv.Itoa(o.Height),
		"-framerate", strconv.Itoa(o.FPS),
		"-i", "pipe:0",
		"-map", "0:v:0",
		// H.264 with fixed GOPs: no scene-cut keyframes
		"-c:v", "libx264", "-pix_fmt", "yuv420p",
		"-preset", o.Preset,
		"-crf", strconv.Itoa(o.CRF),
		"-g", strconv.Itoa(o.GOP),
		"-sc_threshold", "0",
		"-threads", strconv.Itoa(o.Threads),
		// x264's threaded lookahead buffers bframes+1 frames more before
		// the first one comes out; without it the bytes are the same and
		// the first fragment is 4 frames earlier
		"-x264-params", "sync-lookahead=0",
		// bit-exact output: no version strings, no metadata. x264 writes
		// its version and options into an SEI NAL unit; drop all SEI.
		"-bsf:v", "filter_units=remove_types=6",
		"-fflags", "+bitexact", "-flags:v", "+bitexact",
		"-map_metadata", "-1", "-map_chapters", "-1",
		// fragmented MP4 to a pipe: moov up front, fragments cut at each
		// keyframe and after at most FragmentDuration, no mfra trailer
		"-movflags", "empty_moov+default_base_moof+frag_keyframe+skip_trailer",
		"-frag_duration", strconv.FormatInt(fragDuration(o).Microseconds(), 10),
		"-flush_packets", "1",
		"-f", "mp4", "pipe:1",
	}
}

// fragDuration is the -frag_duration to give ffmpeg: 0 (cut at keyframes
// only) when FragmentDuration spans a whole GOP anyway.
func fragDuration(o Options) time.Duration {
	if gop := time.Duration(o.GOP) * time.Second / time.Duration(o.FPS); o.FragmentDuration >= gop {
		return 0
	}
	return o.FragmentDuration
}

// stderrTail is how much of ffmpeg's stderr is kept for error messages.
const stderrTail = 4 << 10

// Encoder is one running ffmpeg. WriteFrame and Close must not be called
// concurrently with each other (to abort from elsewhere, cancel the context
// given to Start); PID may be called at any time.
type Encoder struct {
	o         Options
	frameSize int
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	stderr    *tail
	sink      func(Segment) error
	stopCtx   func() bool

	written atomic.Int64 // frames handed to ffmpeg

	mu     sync.Mutex
	cause  error // first reason to stop early: ctx, sink, malformed output
	killed bool
	reaped bool

	kill      chan struct{} // closed when the child must die now
	readDone  chan struct{} // reader finished
	waitDone  chan struct{} // child reaped; waitErr set
	done      chan struct{} // everything finished; result set
	waitErr   error
	outFrames int   // samples delivered; set before readDone closes
	readErr   error // output ended early; set before readDone closes
	result    error // set before done closes

	closeOnce sync.Once
	closeErr  error
}

// Start runs ffmpeg for o and returns at once; segments reach sink, in
// order, from a goroutine of the Encoder's, as soon as ffmpeg writes them.
// sink must return promptly once ctx is done. If sink returns an error the
// encode stops and WriteFrame and Close report that error.
//
// Cancelling ctx kills ffmpeg and reaps it, whether or not Close is called.
func Start(ctx context.Context, o Options, sink func(Segment) error) (*Encoder, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("encode: nil sink")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("encode: %w", context.Cause(ctx))
	}
	cmd := exec.Command(o.FFmpegPath, args(o)...)
	cmd.Env = append(os.Environ(), "AV_LOG_FORCE_NOCOLOR=1")
	setProcAttr(cmd)
	// Wait gives up on stderr this long after the child exits, in case
	// something it started still holds the pipe.
	cmd.WaitDelay = 2 * time.Second
	e := &Encoder{
		o:         o,
		frameSize: FrameSize(o.Width, o.Height),
		cmd:       cmd,
		stderr:    newTail(stderrTail),
		sink:      sink,
		kill:      make(chan struct{}),
		readDone:  make(chan struct{}),
		waitDone:  make(chan struct{}),
		done:      make(chan struct{}),
	}
	cmd.Stderr = e.stderr
	if e.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		_ = e.stdin.Close()
		return nil, fmt.Errorf("encode: %w", err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("encode: %w", notFound(o.FFmpegPath, err))
		}
		return nil, fmt.Errorf("encode: starting %s: %w", o.FFmpegPath, err)
	}
	// registered before the goroutines start: wait calls stopCtx
	e.stopCtx = context.AfterFunc(ctx, func() {
		e.fail(fmt.Errorf("encode: %w", context.Cause(ctx)))
	})
	go e.read(stdout)
	go e.wait()
	return e, nil
}

// PID is the process id of the ffmpeg child.
func (e *Encoder) PID() int { return e.cmd.Process.Pid }

// fail records the first cause of an early stop and kills the child.
func (e *Encoder) fail(cause error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cause == nil && cause != nil {
		e.cause = cause
	}
	e.killLocked()
}

func (e *Encoder) killLocked() {
	if e.killed {
		return
	}
	e.killed = true
	close(e.kill)
	if !e.reaped {
		killTree(e.cmd.Process)
	}
}

func (e *Encoder) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cause
}

// read cuts ffmpeg's stdout into segments and hands them to the sink.
func (e *Encoder) read(stdout io.Reader) {
	defer close(e.readDone)
	var s segmenter
	err := func() error {
		r := bufio.NewReaderSize(stdout, 64<<10)
		for {
			typ, box, err := readBox(r)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			seg, err := s.add(typ, box)
			if err != nil {
				return err
			}
			if seg != nil {
				if err := e.sink(*seg); err != nil {
					return fmt.Errorf("encode: sink: %w", err)
				}
			}
		}
		seg, err := s.finish()
		if err != nil {
			return err
		}
		if seg != nil {
			if err := e.sink(*seg); err != nil {
				return fmt.Errorf("encode: sink: %w", err)
			}
		}
		return nil
	}()
	e.outFrames = s.frames
	if err == nil {
		return
	}
	e.mu.Lock()
	killed := e.killed
	e.mu.Unlock()
	switch {
	case killed:
		// the output was cut short by the kill, whose cause explains it
	case errors.Is(err, errTruncated):
		// ffmpeg stopped writing: it has exited or is exiting, and its
		// exit status is the better explanation; wait decides
		e.readErr = fmt.Errorf("encode: ffmpeg output: %w", err)
	case errors.Is(err, ErrMalformed):
		e.fail(fmt.Errorf("encode: ffmpeg output: %w", err))
	default: // the sink's error, or reading the pipe failed
		e.fail(err)
	}
}

// wait reaps the child once its output has been read, or at once when it
// has been killed, then settles the result.
func (e *Encoder) wait() {
	select {
	case <-e.readDone:
	case <-e.kill:
	}
	err := e.cmd.Wait()
	e.mu.Lock()
	e.reaped = true
	e.waitErr = err
	e.mu.Unlock()
	close(e.waitDone)
	<-e.readDone
	e.stopCtx()

	e.mu.Lock()
	cause := e.cause
	e.mu.Unlock()
	switch {
	case cause != nil:
		if errors.Is(cause, ErrMalformed) {
			cause = fmt.Errorf("%w%s", cause, e.stderrNote())
		}
		e.result = cause
	case err != nil:
		// a truncated output (readErr) is explained by the exit status
		e.result = fmt.Errorf("encode: ffmpeg failed: %w%s", err, e.stderrNote())
	case e.readErr != nil:
		e.result = fmt.Errorf("%w%s", e.readErr, e.stderrNote())
	case int64(e.outFrames) != e.written.Load():
		e.result = fmt.Errorf("encode: ffmpeg output: %w: %d frames in the output, %d written", ErrMalformed, e.outFrames, e.written.Load())
	}
	close(e.done)
}

// stderrNote is "; ffmpeg stderr: …" with the tail of ffmpeg's stderr, or
// "" if it wrote nothing there.
func (e *Encoder) stderrNote() string {
	if s := e.stderr.String(); s != "" {
		return "; ffmpeg stderr: " + s
	}
	return ""
}

// WriteFrame sends one I420 frame (FrameSize(Width, Height) bytes: the Y
// plane, then U, then V) to ffmpeg. It blocks while ffmpeg is busy, which is
// the encoder's backpressure. After a failure it returns the cause: the
// context's error, the sink's error, or ffmpeg's exit status with the tail
// of its stderr.
func (e *Encoder) WriteFrame(yuv []byte) error {
	if len(yuv) != e.frameSize {
		return fmt.Errorf("encode: frame of %d bytes, want %d for %dx%d I420", len(yuv), e.frameSize, e.o.Width, e.o.Height)
	}
	if e.o.Frames > 0 && e.written.Load() >= int64(e.o.Frames) {
		return fmt.Errorf("encode: frame %d is more than the %d announced", e.written.Load()+1, e.o.Frames)
	}
	if err := e.failure(); err != nil {
		return err
	}
	select {
	case <-e.done:
		return errors.New("encode: WriteFrame after the encoder finished")
	default:
	}
	if _, err := e.stdin.Write(yuv); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return errors.New("encode: WriteFrame after Close")
		}
		// ffmpeg is gone or going: make sure, then say why
		e.fail(nil)
		<-e.waitDone
		if cause := e.failure(); cause != nil {
			return cause
		}
		e.mu.Lock()
		werr := e.waitErr
		e.mu.Unlock()
		return fmt.Errorf("encode: writing frame %d to ffmpeg: %w (ffmpeg: %v%s)", e.written.Load()+1, err, werr, e.stderrNote())
	}
	e.written.Add(1)
	return nil
}

// Close ends the input, waits until ffmpeg has exited and every segment has
// been handed to the sink, and reports the first error of the encode. It is
// safe to call more than once, and returns the same result each time.
func (e *Encoder) Close() error {
	e.closeOnce.Do(func() {
		_ = e.stdin.Close()
		<-e.done
		e.closeErr = e.result
		if e.closeErr == nil && e.o.Frames > 0 && e.written.Load() != int64(e.o.Frames) {
			e.closeErr = fmt.Errorf("encode: closed after %d of %d frames", e.written.Load(), e.o.Frames)
		}
	})
	return e.closeErr
}
