package benchrun

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) {
	s := r.Setup
	order := "interleaved rounds"
	if !s.Interleaved {
		order = "end-to-end runs back to back under the CPU profile " + s.CPUProfile + ", then the encoder runs"
	}
	fmt.Fprintf(w, "whirl bench: %dx%d, %d fps, %d frames, seed %d, %d wheels, %s style\n", s.Width, s.Height, s.FPS, s.Frames, s.Seed, s.Wheels, s.Style)
	fmt.Fprintf(w, "%d reps (medians shown), %s; %d CPUs, %d render workers; %s; ffmpeg %s; %.0f s in all\n\n",
		s.Reps, order, s.CPUs, s.RenderWorkers, s.GoVersion, s.FFmpeg, s.Seconds)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tframes/s\tseconds\tfirst fragment s\tbytes\tCPU s\t")
	e := r.EndToEnd
	fmt.Fprintf(tw, "1-3. end-to-end at the gRPC client\t%.1f\t%.2f\t%.3f\t%d\t%.2f\t\n", e.MedianFPS, e.MedianSeconds, e.MedianFirstFragment, e.Bytes, e.MedianCPU)
	fmt.Fprintf(tw, "render alone (render.Frames, %d workers, 1 run)\t%.1f\t%.2f\t\t\t%.2f\t\n", r.Render.Workers, r.Render.FPS, r.Render.Seconds, r.Render.CPUSeconds)
	for i, enc := range r.Encoders {
		label := fmt.Sprintf("4%c. %s", 'a'+i, enc.Name)
		first := ""
		if enc.MedianFirstFragment > 0 {
			first = fmt.Sprintf("%.3f", enc.MedianFirstFragment)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%s\t%d\t%.2f\t\n", label, enc.MedianFPS, enc.MedianSeconds, first, enc.Bytes, enc.MedianChildCPU)
	}
	m := r.Matplotlib
	if m.Ran {
		fmt.Fprintf(tw, "5. matplotlib baseline (its fps_rendered)\t%.1f\t%.2f\t\t%d\t%.2f\t\n", m.FPS, m.Seconds, m.Bytes, m.ChildCPU)
	} else {
		fmt.Fprintf(tw, "5. matplotlib baseline\t-\t-\t\t-\t\t\n")
	}
	tw.Flush()
	fmt.Fprintf(w, "first fragment at the client: request → header (ffmpeg started, frame 0 in, init segment out) %.3f s median, header → first fragment %.3f s\n",
		e.MedianHeader, e.MedianHeaderToFirst)
	fmt.Fprintln(w, "(CPU s: end-to-end = this process (server+client) + ffmpeg; render alone = this process; encoders and matplotlib = the child processes)")
	if !m.Ran {
		fmt.Fprintln(w, "matplotlib:", m.Note)
	}

	r.writeRuns(w)
	r.writeCache(w)
	r.writeConcurrent(w)
	r.writeTargets(w)
}

// writeRuns lists every end-to-end run and every encoder run.
func (r *Report) writeRuns(w io.Writer) {
	e := r.EndToEnd
	fmt.Fprintln(w, "\nend-to-end runs:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tframes/s\tseconds\theader s\tfirst fragment s\tfragments\tchunks\tserver elapsed\tserver render\tserver encode\tprocess CPU s\tffmpeg CPU s\t")
	row := func(name string, run E2ERun) {
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%.3f\t%.3f\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, run.FPS, run.Seconds, run.Header,
			run.FirstFragment, run.Fragments, run.Chunks, run.ServerElapsed, run.ServerRender, run.ServerEncode, run.ProcCPU, run.ChildCPU)
	}
	row("warm-up (not counted)", e.WarmUp)
	for i, run := range e.Runs {
		row(fmt.Sprintf("#%d", i+1), run)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nencoder runs (frames/s per run):")
	for _, enc := range r.Encoders {
		var fps []string
		for _, run := range enc.Runs {
			fps = append(fps, fmt.Sprintf("%.1f", run.FPS))
		}
		extra := ""
		if len(enc.Runs) > 0 && enc.Runs[0].FirstFragment > 0 {
			f := enc.Runs[0]
			extra = fmt.Sprintf("; first fragment (%d frames) out after %d frames in", f.FirstFrames, f.FramesIn)
		}
		fmt.Fprintf(w, "  %s: %s [%s]%s\n", enc.Name, strings.Join(fps, " "), enc.Settings, extra)
	}

}

// writeTargets lists the targets, the CPU budget and the notes.
func (r *Report) writeTargets(w io.Writer) {
	s := r.Setup
	fmt.Fprintln(w, "\ntargets:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\twant\tgot\tlimit\tratio\tstatus\tnote\t")
	for _, t := range r.Targets {
		got, limit, ratio := fmt.Sprintf("%.3g", t.Got), fmt.Sprintf("%.3g", t.Limit), fmt.Sprintf("%.2f", t.Ratio)
		if strings.Contains(t.Name, "bytes") {
			got, limit = fmt.Sprintf("%.0f", t.Got), fmt.Sprintf("%.0f", t.Limit)
		}
		if t.Status == "SKIP" {
			limit, ratio = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Name, t.Want, got, limit, ratio, t.Status, t.Note)
	}
	tw.Flush()

	b := r.Budget
	fmt.Fprintf(w, "\nCPU budget per frame: render %.1f ms (alone) + ffmpeg %.1f ms (whirl settings) = %.1f ms → at most %.1f frames/s on %d CPUs; end-to-end spent %.1f ms/frame\n",
		b.RenderCPUPerFrameMs, b.EncodeCPUPerFrameMs, b.RenderCPUPerFrameMs+b.EncodeCPUPerFrameMs, b.MaxFPS, s.CPUs, b.E2ECPUPerFrameMs)
	fmt.Fprintf(w, "end-to-end floor: each run's CPU (this process + ffmpeg) less %d ffmpeg start-ups the spare made before the request (%.3f CPU s each) = %.2f CPU s → at most %.1f frames/s on %d CPUs\n",
		b.Segments, b.StartupCPU, b.WorkCPU, b.FloorFPS, s.CPUs)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}
