package benchrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/whirl-dev/whirl/internal/curve"
	"github.com/whirl-dev/whirl/internal/encode"
)

// Tristate is a yes/no/decide-for-me switch.
type Tristate int

const (
	Auto Tristate = iota
	On
	Off
)

// Config is one bench run.
type Config struct {
	Width, Height, FPS, Frames int
	Seed                       uint64
	Wheels                     int
	// Reps is how many times each measured run is repeated (medians are
	// reported).
	Reps int
	// RenderWorkers overrides the server's render workers (0: production's
	// default). The pre-render for the encoder runs uses the same count.
	RenderWorkers int
	// Plain adds the reference run of ffmpeg with its plain defaults.
	Plain bool
	// Concurrent adds the concurrency rounds (ConcurrentRuns): five renders
	// at once, single-process encoding vs segments.
	Concurrent bool
	// Cache adds the cache rounds (CacheRuns): cold, hit, five identical
	// at once.
	Cache bool
	// Matplotlib: Auto runs it when Python can import matplotlib.
	Matplotlib Tristate
	// BaselineDir holds seed_matplotlib.py; relative to the repository root.
	BaselineDir string
	// Python runs the matplotlib baseline.
	Python string
	// CPUProfile, if set, is where the CPU profile of the end-to-end runs goes.
	CPUProfile string
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// DefaultConfig is the benchmark the targets are stated for.
func DefaultConfig() Config {
	return Config{
		Width: 720, Height: 720, FPS: 30, Frames: 300,
		Seed: 1, Wheels: 12, Reps: 3, Plain: true, Cache: true, Concurrent: true,
		BaselineDir: "internal/bench/baseline", Python: "/usr/bin/python3",
	}
}

// Check reports what in c cannot be measured.
func (c Config) Check() error {
	var errs []error
	if c.Width < 64 || c.Height < 64 || c.Width%2 != 0 || c.Height%2 != 0 {
		errs = append(errs, fmt.Errorf("size %dx%d: both sides must be even and at least 64", c.Width, c.Height))
	}
	if c.FPS < 1 || c.FPS > 60 {
		errs = append(errs, fmt.Errorf("fps %d: must be 1-60", c.FPS))
	}
	if c.Frames < 1 || c.Frames > 3600 {
		errs = append(errs, fmt.Errorf("frames %d: must be 1-3600", c.Frames))
	}
	if c.Reps < 1 {
		errs = append(errs, fmt.Errorf("reps %d: must be at least 1", c.Reps))
	}
	if c.RenderWorkers < 0 {
		errs = append(errs, fmt.Errorf("render-workers %d: must not be negative", c.RenderWorkers))
	}
	return errors.Join(errs...)
}

func (c Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
	}
}

// Report is everything one run measured. Times are in seconds.
type Report struct {
	Setup      Setup          `json:"setup"`
	EndToEnd   EndToEnd       `json:"end_to_end"`
	Render     RenderAlone    `json:"render_alone"`
	Encoders   []EncoderRuns  `json:"encoders"`
	Matplotlib Matplotlib     `json:"matplotlib"`
	Cache      CacheRuns      `json:"cache"`
	Concurrent ConcurrentRuns `json:"concurrent"`
	Targets    []Target       `json:"targets"`
	Budget     Budget         `json:"cpu_budget"`
	Notes      []string       `json:"notes,omitempty"`
}

// Setup records what was measured, and where.
type Setup struct {
	Width         int       `json:"width"`
	Height        int       `json:"height"`
	FPS           int       `json:"fps"`
	Frames        int       `json:"frames"`
	Seed          uint64    `json:"seed"`
	Wheels        int       `json:"wheels"`
	Style         string    `json:"style"`
	Reps          int       `json:"reps"`
	CPUs          int       `json:"cpus"`
	RenderWorkers int       `json:"render_workers"`
	GoVersion     string    `json:"go_version"`
	FFmpeg        string    `json:"ffmpeg"`
	Interleaved   bool      `json:"interleaved"`
	CPUProfile    string    `json:"cpu_profile,omitempty"`
	Started       time.Time `json:"started"`
	Seconds       float64   `json:"seconds"`
}

// Budget is the CPU arithmetic: on this many cores, rendering and encoding
// one frame cost this much, so no pipeline can beat MaxFPS.
type Budget struct {
	RenderCPUPerFrameMs float64 `json:"render_cpu_per_frame_ms"`
	EncodeCPUPerFrameMs float64 `json:"encode_cpu_per_frame_ms"`
	// E2ECPUPerFrameMs is what the end-to-end runs spent per frame, this
	// process (server, client, gRPC) plus ffmpeg.
	E2ECPUPerFrameMs float64 `json:"e2e_cpu_per_frame_ms"`
	// MaxFPS is CPUs / (render + encode per frame): the end-to-end ceiling
	// if both kept every core busy all the time.
	MaxFPS float64 `json:"max_fps"`
	// Segments is the number of segments (ffmpeg processes) of a video.
	Segments int `json:"segments"`
	// StartupCPU is the CPU seconds of one ffmpeg start-up (`ffmpeg
	// -version`, which loads the same libraries; median of 5).
	StartupCPU float64 `json:"ffmpeg_startup_cpu_seconds"`
	// WorkCPU is the CPU seconds an end-to-end run spent in its own time
	// (median over the runs): this process plus ffmpeg, less the start-ups
	// of the Segments ffmpeg processes, which the server's spare started
	// before the request.
	WorkCPU float64 `json:"e2e_work_cpu_seconds"`
	// FloorFPS is the most frames/s that work allows on every CPU at once:
	// the end-to-end ceiling on this machine with this encoder.
	FloorFPS float64 `json:"e2e_floor_fps"`
}

// measureStartup fills in Segments and StartupCPU.
func (b *bench) measureStartup(ctx context.Context) error {
	_, eo := b.videoOptions()
	plan, err := eo.Plan(eo.Frames)
	if err != nil {
		return err
	}
	var cpus []float64
	for range 5 {
		cmd := exec.CommandContext(ctx, encode.DefaultFFmpegPath, "-hide_banner", "-version")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ffmpeg -version: %w", err)
		}
		cpus = append(cpus, (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds())
	}
	b.rep.Budget.Segments, b.rep.Budget.StartupCPU = len(plan), median(cpus)
	return nil
}

// Target is one goal and whether the run met it.
type Target struct {
	Name   string  `json:"name"`
	Want   string  `json:"want"`
	Got    float64 `json:"got"`
	Limit  float64 `json:"limit"`
	Ratio  float64 `json:"ratio"`  // got / the baseline it is compared with; 0 when skipped
	Status string  `json:"status"` // PASS, MISS or SKIP
	Note   string  `json:"note,omitempty"`
}

// Run measures everything cfg asks for.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	b, err := prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.measureStartup(ctx); err != nil {
		return nil, err
	}
	cfg.logf("warm-up render (not counted)")
	if b.rep.EndToEnd.WarmUp, err = b.srv.EndToEnd(ctx, cfg, nil); err != nil {
		return nil, fmt.Errorf("warm-up run: %w", err)
	}
	if cfg.CPUProfile == "" {
		err = b.interleaved(ctx)
	} else {
		err = b.profiled(ctx)
	}
	for i := range cfg.Reps {
		if err != nil || !cfg.Cache {
			break
		}
		err = b.cacheRound(ctx, i)
	}
	for i := range cfg.Reps {
		if err != nil || !cfg.Concurrent {
			break
		}
		err = b.concurrentRound(ctx, i)
	}
	if err != nil {
		return nil, err
	}
	rep := b.rep
	rep.EndToEnd.summarize()
	rep.Cache.summarize()
	rep.Concurrent.summarize(rep.Budget, cfg.Frames)
	for _, e := range b.encoders {
		e.summarize()
		rep.Encoders = append(rep.Encoders, *e)
	}
	rep.Matplotlib = runMatplotlib(ctx, cfg)
	rep.budget(cfg) // the targets quote its floor
	rep.judge()
	rep.Setup.Seconds = time.Since(rep.Setup.Started).Seconds()
	return rep, nil
}

// bench is one Run under way: the server, the pre-rendered frames and the
// encoder configurations measured against it.
type bench struct {
	cfg      Config
	rep      *Report
	srv      *Server
	frames   *frameStore
	encoders []*EncoderRuns
	opts     []encode.Options // the encoders' settings, by index; unused for "plain"
	spare    *encode.Spare    // warm ffmpeg for the concurrency rounds (Concurrent)
}

// prepare checks ffmpeg, starts the server and pre-renders the frames the
// encoder runs read.
func prepare(ctx context.Context, cfg Config) (*bench, error) {
	workers := cfg.RenderWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0) // service.Config's default
	}
	rep := &Report{Setup: Setup{
		Width: cfg.Width, Height: cfg.Height, FPS: cfg.FPS, Frames: cfg.Frames,
		Seed: cfg.Seed, Wheels: cfg.Wheels, Style: "wheels", Reps: cfg.Reps,
		CPUs: runtime.NumCPU(), RenderWorkers: workers, GoVersion: runtime.Version(),
		FFmpeg: ffmpegVersion(ctx), Interleaved: cfg.CPUProfile == "",
		CPUProfile: cfg.CPUProfile, Started: time.Now(),
	}}
	if err := encode.Check(ctx, ""); err != nil {
		return nil, fmt.Errorf("ffmpeg unusable: %w", err)
	}
	c, err := curve.Generate(curve.Params{Seed: cfg.Seed, Wheels: cfg.Wheels})
	if err != nil {
		return nil, fmt.Errorf("curve: %w", err)
	}
	srv, err := StartServer(cfg.RenderWorkers)
	if err != nil {
		return nil, err
	}
	// Pre-render every frame into memory outside the Go heap, so that holding
	// them does not change how the server's garbage collector paces itself.
	cfg.logf("pre-rendering %d frames of %dx%d", cfg.Frames, cfg.Width, cfg.Height)
	frames, ra, err := preRender(ctx, c, cfg, workers)
	if err != nil {
		srv.Close()
		return nil, err
	}
	rep.Render = ra
	b := &bench{cfg: cfg, rep: rep, srv: srv, frames: frames}
	b.addEncoders()
	if cfg.Concurrent {
		b.startSpare()
	}
	return b, nil
}

// addEncoders lists the ffmpeg-alone configurations: whirl's encoder as
// the server runs it (segments), libx264 medium/CRF 23 (the size
// reference), one ffmpeg with whirl's preset, CRF and GOP and x264's own
// threading reading the frames from a file (what a user would run
// instead), and (Plain) ffmpeg's own defaults.
func (b *bench) addEncoders() {
	whirl := encode.Options{Width: b.cfg.Width, Height: b.cfg.Height, FPS: b.cfg.FPS, Frames: b.cfg.Frames}
	medium := whirl
	medium.Preset, medium.CRF = "medium", 23
	b.encoders = []*EncoderRuns{
		{Name: "ffmpeg alone, whirl settings (segments, budget of GOMAXPROCS encoders)", Key: "whirl", Settings: describe(whirl, encode.SpanThreads)},
		{Name: "ffmpeg alone, libx264 medium/CRF 23", Key: "medium", Settings: describe(medium, encode.DefaultThreads)},
		{Name: "one ffmpeg, same preset/CRF/GOP, x264 threads, frames from a file", Key: "file", Settings: strings.Join(sameSettingsCodec(b.cfg), " ")},
	}
	b.opts = []encode.Options{whirl, medium, {}}
	if b.cfg.Plain {
		b.encoders = append(b.encoders, &EncoderRuns{Name: "ffmpeg plain defaults, .mp4 file (ref)", Key: "plain", Settings: "libx264 defaults (medium, crf 23, keyint 250, scenecut, threads auto), regular mp4 file"})
	}
}

func (b *bench) close() {
	if b.spare != nil {
		b.spare.Close()
	}
	b.frames.free()
	b.srv.Close()
}

// interleaved runs the rounds: end-to-end, then each encoder, Reps times,
// so that drift in machine load hits every figure alike.
func (b *bench) interleaved(ctx context.Context) error {
	for i := range b.cfg.Reps {
		b.cfg.logf("round %d of %d", i+1, b.cfg.Reps)
		if err := b.endToEndRound(ctx, i); err != nil {
			return err
		}
		if err := b.encodeRound(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// profiled runs the end-to-end runs back to back inside the CPU profile,
// then the encoder runs.
func (b *bench) profiled(ctx context.Context) error {
	f, err := os.Create(b.cfg.CPUProfile)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	b.cfg.logf("end-to-end runs (profiling to %s)", b.cfg.CPUProfile)
	for i := range b.cfg.Reps {
		if err = b.endToEndRound(ctx, i); err != nil {
			break
		}
	}
	pprof.StopCPUProfile()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	b.cfg.logf("encoder runs")
	for i := range b.cfg.Reps {
		if err := b.encodeRound(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) endToEndRound(ctx context.Context, i int) error {
	r, err := b.srv.EndToEnd(ctx, b.cfg, nil)
	if err != nil {
		return fmt.Errorf("end-to-end run %d: %w", i+1, err)
	}
	b.cfg.logf("  end-to-end #%d: %.1f frames/s, first fragment %.3fs, %d bytes", i+1, r.FPS, r.FirstFragment, r.Bytes)
	b.rep.EndToEnd.Runs = append(b.rep.EndToEnd.Runs, r)
	return nil
}

func (b *bench) encodeRound(ctx context.Context, i int) error {
	for j, e := range b.encoders {
		var r EncodeRun
		var err error
		switch e.Key {
		case "plain":
			r, err = encodeFFmpeg(ctx, b.frames, b.cfg, plainCodec(), false)
		case "file":
			r, err = encodeFFmpeg(ctx, b.frames, b.cfg, sameSettingsCodec(b.cfg), true)
		default:
			r, err = encodeAlone(ctx, b.frames, b.opts[j], e.Key == "whirl")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
		b.cfg.logf("  %s #%d: %.1f frames/s, %d bytes", e.Name, i+1, r.FPS, r.Bytes)
		e.Runs = append(e.Runs, r)
	}
	return nil
}

// describe is the encoder settings, as encode resolves them.
func describe(o encode.Options, threads int) string {
	preset := cmpOr(o.Preset, encode.DefaultPreset)
	crf := o.CRF
	if crf == 0 {
		crf = encode.DefaultCRF
	}
	return fmt.Sprintf("%s, crf %d, gop %ds, fragments ≤%v, threads %d, fragmented mp4", preset, crf,
		encode.DefaultGOPSeconds, encode.DefaultFragmentDuration, threads)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func ffmpegVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, encode.DefaultFFmpegPath, "-hide_banner", "-version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	line, _, _ = strings.Cut(line, " Copyright")
	return strings.TrimSpace(strings.TrimPrefix(line, "ffmpeg version "))
}

// encoder finds an encoder's runs by key.
func (r *Report) encoder(key string) *EncoderRuns {
	for i := range r.Encoders {
		if r.Encoders[i].Key == key {
			return &r.Encoders[i]
		}
	}
	return nil
}

// judge fills in the targets.
func (r *Report) judge() {
	e2e := r.EndToEnd
	status := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	if w := r.encoder("file"); w != nil && w.MedianFPS > 0 {
		limit := 0.9 * w.MedianFPS
		t := Target{
			Name: "end-to-end vs one ffmpeg, same preset/CRF/GOP, x264 threads, frames from a file", Want: "≥ 0.9 ×",
			Got: e2e.MedianFPS, Limit: limit, Ratio: e2e.MedianFPS / w.MedianFPS,
			Status: status(e2e.MedianFPS >= limit),
		}
		// Interleaved rounds also give a ratio per round, which machine-load
		// drift between rounds does not skew.
		if r.Setup.Interleaved && len(w.Runs) == len(e2e.Runs) && len(e2e.Runs) > 1 {
			var rs []string
			var ratios []float64
			for i := range e2e.Runs {
				ratios = append(ratios, e2e.Runs[i].FPS/w.Runs[i].FPS)
				rs = append(rs, fmt.Sprintf("%.2f", ratios[i]))
			}
			r.EndToEnd.PairedRatio = median(ratios)
			t.Note = fmt.Sprintf("per-round ratios %s, median %.2f; ", strings.Join(rs, " "), r.EndToEnd.PairedRatio)
		}
		t.Note += fmt.Sprintf("floor: the end-to-end CPU work on every CPU at once allows %.2f ×", r.Budget.FloorFPS/w.MedianFPS)
		r.Targets = append(r.Targets, t)
	}
	mpl := Target{Name: "end-to-end vs matplotlib", Want: "≥ 4.5 ×", Got: e2e.MedianFPS, Status: "SKIP", Note: r.Matplotlib.Note}
	if r.Matplotlib.Ran && r.Matplotlib.FPS > 0 {
		mpl.Limit = 4.5 * r.Matplotlib.FPS
		mpl.Ratio = e2e.MedianFPS / r.Matplotlib.FPS
		mpl.Status = status(e2e.MedianFPS >= mpl.Limit)
		mpl.Note = fmt.Sprintf("floor: the end-to-end CPU work on every CPU at once allows %.2f ×", r.Budget.FloorFPS/r.Matplotlib.FPS)
		if w := r.encoder("file"); w != nil && w.MedianFPS > 0 {
			mpl.Note += fmt.Sprintf("; one ffmpeg on frames from a file, nothing drawn, is %.2f ×", w.MedianFPS/r.Matplotlib.FPS)
		}
	}
	r.Targets = append(r.Targets, mpl)
	r.Targets = append(r.Targets, Target{
		Name: "first fragment at the client (s)", Want: "≤ 0.25 s",
		Got: e2e.MedianFirstFragment, Limit: 0.25, Ratio: e2e.MedianFirstFragment / 0.25,
		Status: status(e2e.MedianFirstFragment > 0 && e2e.MedianFirstFragment <= 0.25),
	})
	if m := r.encoder("medium"); m != nil && m.Bytes > 0 {
		limit := 1.05 * float64(m.Bytes)
		r.Targets = append(r.Targets, Target{
			Name: "MP4 bytes vs libx264 medium/CRF 23", Want: "≤ 1.05 ×",
			Got: float64(e2e.Bytes), Limit: limit, Ratio: float64(e2e.Bytes) / float64(m.Bytes),
			Status: status(float64(e2e.Bytes) <= limit),
		})
	}
	if w := r.encoder("whirl"); w != nil && e2e.SHA256 != "" {
		if w.SHA256 == e2e.SHA256 {
			r.Notes = append(r.Notes, "the streamed MP4 is byte-identical to ffmpeg alone with whirl settings on the pre-rendered frames (same work measured)")
		} else {
			r.Notes = append(r.Notes, fmt.Sprintf("the streamed MP4 (sha256 %.12s…) differs from ffmpeg alone with whirl settings (%.12s…)", e2e.SHA256, w.SHA256))
		}
	}
	if !e2e.Deterministic {
		r.Notes = append(r.Notes, "the end-to-end runs did not all produce the same bytes")
	}
	r.judgeCache()
	r.judgeConcurrent()
}

// budget works out the CPU arithmetic from the render-alone and encoder
// runs.
func (r *Report) budget(cfg Config) {
	f := float64(cfg.Frames)
	r.Budget.RenderCPUPerFrameMs = 1000 * r.Render.CPUSeconds / f
	if w := r.encoder("whirl"); w != nil {
		r.Budget.EncodeCPUPerFrameMs = 1000 * w.MedianChildCPU / f
	}
	r.Budget.E2ECPUPerFrameMs = 1000 * r.EndToEnd.MedianCPU / f
	if per := r.Budget.RenderCPUPerFrameMs + r.Budget.EncodeCPUPerFrameMs; per > 0 {
		r.Budget.MaxFPS = 1000 * float64(r.Setup.CPUs) / per
	}
	var work []float64
	for _, run := range r.EndToEnd.Runs {
		work = append(work, run.ProcCPU+run.ChildCPU-float64(r.Budget.Segments)*r.Budget.StartupCPU)
	}
	if r.Budget.WorkCPU = median(work); r.Budget.WorkCPU > 0 {
		r.Budget.FloorFPS = f * float64(r.Setup.CPUs) / r.Budget.WorkCPU
	}
}

// median of xs (0 for none); xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
