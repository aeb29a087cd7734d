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

	"github.com/whirl-dev/whirl/internal/i420"
)

// Defaults, chosen by measurement: TestMeasure, TestMeasureDepth and
// BenchmarkPresets in this package, tables in MEASUREMENTS.md. 720×720,
// 30 fps, 300 synth frames (the matplotlib baseline's scene), on the 2-vCPU
// machine class shared with other work, so wall-clock fps swings with the
// load and the ffmpeg child's CPU time is the steadier speed figure. The
// reference is libx264 medium CRF 23 with x264's own GOP on the same frames:
// 458079 bytes, SSIM 30.41 dB, PSNR 48.83 dB; the budget is 1.05× its bytes.
//
//	preset     CRF  bytes×ref  child CPU ms/frame  SSIM dB  PSNR dB   (GOP 4 s, 100 ms fragments)
//	ultrafast  23   2.961      2.6–3.4             32.17    55.41
//	ultrafast  39   1.037      2.8                 20.66    41.07     lowest CRF in budget
//	superfast  23   1.917      4.6                 30.95    51.36
//	superfast  32   0.999      4.6–5.0             24.17    43.55     lowest CRF in budget
//	veryfast   23   1.003      6.0–6.5             27.91    46.68     ← default
//	faster     23   1.050      9.3                 29.72    48.45
//	fast       23   1.040      9.6                 30.78    48.96
//	medium     23   1.040      8.3–9.6             31.09    49.14
//
// Preset and CRF: veryfast CRF 23 is the fastest setting within the byte
// budget that keeps quality near the reference (−2.2 dB PSNR); superfast
// and ultrafast fit only at CRFs that lose 5–8 dB. On the real renderer's
// frames veryfast 23 is 0.984× the reference. medium CRF 23 matches the
// reference's quality at 1.04× its bytes for ~1.5× the CPU.
//
// GOP: bytes×ref for GOPs of 1, 2, 4 and 8.3 s (x264's 250 frames):
// 1.155, 1.041, 1.003, 0.987; 4 s keeps the budget with margin.
//
// FragmentDuration: with frames ready, Start → first moof+mdat took 201 ms
// (median; 183–249) at 100 ms, 245 ms at 200 ms, 337 ms at 500 ms and
// 829 ms when cut at keyframes only; fed at 30 fps, 503 / 605 / 901 /
// 4404 ms. 100 ms costs 1.2% bytes over 200 ms. ffmpeg's own start-up,
// before it takes the first frame, is ~130 ms of that. 16 frames must go in
// before the first fragment comes out (3 in the fragment, 1 to close it,
// the rest x264's lookahead and B-frames); x264's default sync-lookahead
// would add 4 more (hence sync-lookahead=0, same bytes). rc-lookahead 5 or
// tune=zerolatency would cut it to 11 or 7, but cost quality (−0.8 dB PSNR
// at the same CRF) or 1.56× the bytes, so neither is used.
//
// Threads: libx264 threads 1 and 2 give identical bytes (3 and 4 do not);
// 2 is as fast as 1 alone and faster with five encodes at once (56 vs 36
// fps each). Output is byte-identical alone and beside four others.
const (
	DefaultFFmpegPath       = "ffmpeg"
	DefaultPreset           = "veryfast"
	DefaultCRF              = 23
	DefaultGOPSeconds       = 4
	DefaultFragmentDuration = 100 * time.Millisecond
	DefaultThreads          = 2
)

// DefaultNice is the niceness the server adds to ffmpeg's (Options.Nice
// itself defaults to 0). Encoding takes most of the CPU while renders run;
// at niceness 0 the server's RPC handling waits for a CPU behind it. In two
// back-to-back 60 s, 50-client internal/load runs on 2 cores, AcquireLease
// p99 at the client was 10.7 ms at niceness 0 and 5.7 ms at 19 (285 and
// 278 renders finished), and the server's threads waited 60 s and 9 s for
// a CPU.
const DefaultNice = 19

// MaxNice is the largest Options.Nice, the kernel's lowest priority.
const MaxNice = 19

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
	// Nice is added to the server's own niceness for ffmpeg, as nice -n
	// does: 0 (the zero value) leaves it alone, 19 is the lowest priority.
	// Encoding is bulk work that takes most of the CPU; a positive Nice
	// lets the kernel run the server's RPC handling first whenever both
	// want a CPU. It changes speed only when the CPUs are contended and
	// never the output bytes. Applied on Linux only.
	Nice int
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
	if o.Nice < 0 || o.Nice > MaxNice {
		errs = append(errs, fmt.Errorf("nice %d: must be in 0..%d", o.Nice, MaxNice))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("encode: invalid options: %w", err)
	}
	return o, nil
}

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
	stdin     *os.File // our end of ffmpeg's stdin; closed by Close or wait
	stderr    *tail
	sink      func(Segment) error
	stopCtx   func() bool

	written atomic.Int64 // frames handed to ffmpeg
	closing atomic.Bool  // Close has been called

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
	writeErr  error // WriteFrame found ffmpeg gone; guarded by mu

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
		frameSize: i420.Size(o.Width, o.Height),
		cmd:       cmd,
		stderr:    newTail(stderrTail),
		sink:      sink,
		kill:      make(chan struct{}),
		readDone:  make(chan struct{}),
		waitDone:  make(chan struct{}),
		done:      make(chan struct{}),
	}
	cmd.Stderr = e.stderr
	// Own pipes rather than cmd.StdinPipe/StdoutPipe: Wait closes those as
	// soon as the child exits, which would cut off output still buffered
	// in the pipe and turn a write to a dead ffmpeg into "file closed".
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
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
	e.stdin = stdinW
	// registered before the goroutines start: wait calls stopCtx
	e.stopCtx = context.AfterFunc(ctx, func() {
		e.fail(fmt.Errorf("encode: %w", context.Cause(ctx)))
	})
	go e.read(stdoutR)
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
func (e *Encoder) read(stdout *os.File) {
	defer close(e.readDone)
	defer stdout.Close()
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
	if e.failure() != nil {
		// the output was cut short by a kill whose cause explains it
		return
	}
	switch {
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
	_ = e.stdin.Close() // if Close was never called

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

// WriteFrame sends one I420 frame (i420.Size(Width, Height) bytes: the Y
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
		if e.closing.Load() {
			return errors.New("encode: WriteFrame after Close")
		}
		// ffmpeg is gone or going (or was killed, and Wait closed the
		// pipe): make sure, then say why
		e.fail(nil)
		<-e.waitDone
		if cause := e.failure(); cause != nil {
			return cause
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		status := "exited normally"
		if e.waitErr != nil {
			status = e.waitErr.Error()
		}
		e.writeErr = fmt.Errorf("encode: ffmpeg stopped reading frames at frame %d: %w (ffmpeg: %s%s)", e.written.Load()+1, err, status, e.stderrNote())
		return e.writeErr
	}
	e.written.Add(1)
	return nil
}

// Close ends the input, waits until ffmpeg has exited and every segment has
// been handed to the sink, and reports the first error of the encode. It is
// safe to call more than once, and returns the same result each time.
func (e *Encoder) Close() error {
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		_ = e.stdin.Close()
		<-e.done
		e.mu.Lock()
		e.closeErr = e.result
		if e.closeErr == nil {
			// ffmpeg exited cleanly but had stopped taking frames
			e.closeErr = e.writeErr
		}
		e.mu.Unlock()
		if e.closeErr == nil && e.o.Frames > 0 && e.written.Load() != int64(e.o.Frames) {
			e.closeErr = fmt.Errorf("encode: closed after %d of %d frames", e.written.Load(), e.o.Frames)
		}
	})
	return e.closeErr
}
