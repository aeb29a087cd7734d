package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// renderFlags are the flags of render.
type renderFlags struct {
	curve    curveFlags
	look     lookFlags
	fps      int
	frames   int
	out      string
	leaseID  string
	keep     bool
	wait     bool
	holder   string
	deadline time.Duration
	quiet    bool
	noResume bool
}

func defineRender(fs *flag.FlagSet) runner {
	f := &renderFlags{}
	f.curve.register(fs)
	f.look.register(fs)
	fs.IntVar(&f.fps, "fps", 30, "frames per second, 1-60")
	fs.IntVar(&f.frames, "frames", 300, "number of frames, 1-3600")
	fs.StringVar(&f.out, "o", "", "output `file` (- for stdout); required")
	fs.StringVar(&f.leaseID, "lease", "", "render under this lease `id` (from 'whirl lease acquire'); it is not released")
	fs.BoolVar(&f.keep, "keep-lease", false, "keep the lease acquired for this render, and print its id")
	fs.BoolVar(&f.wait, "wait", false, "when every lease is taken, queue on the server instead of retrying")
	fs.StringVar(&f.holder, "holder", "", "holder `label` shown to operators (default whirl-client@HOST)")
	fs.DurationVar(&f.deadline, "deadline", 0, "give up after this `duration`, waiting for a lease included (0 = never)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress display, even on a terminal")
	fs.BoolVar(&f.noResume, "no-resume", false, "fail when the stream breaks, instead of reconnecting and resuming it")
	return func(a *app, ctx context.Context, _ []string) error { return a.render(ctx, f) }
}

// request is the RenderAnimation request the flags describe.
func (f *renderFlags) request() (*whirlv1.RenderAnimationRequest, error) {
	gen, err := f.curve.request()
	if err != nil {
		return nil, err
	}
	w, h := f.look.dims()
	return &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: gen},
		Video: &whirlv1.VideoOptions{
			Width: w, Height: h, Fps: int32(f.fps), Frames: int32(f.frames), Style: f.look.style.v, Appearance: f.look.appearance(),
		},
	}, nil
}

// options are the client's render options the flags ask for.
func (f *renderFlags) options() []client.RenderOption {
	var opts []client.RenderOption
	if f.leaseID != "" {
		opts = append(opts, client.WithLease(f.leaseID))
	}
	if f.keep {
		opts = append(opts, client.KeepLease())
	}
	if f.wait {
		opts = append(opts, client.WithAcquirePolicy(client.AcquireWait))
	}
	if f.noResume {
		opts = append(opts, client.WithoutResume())
	}
	return opts
}

func (a *app) render(ctx context.Context, f *renderFlags) error {
	if err := a.checkOutput("render", "video", f.out); err != nil {
		return err
	}
	req, err := f.request()
	if err != nil {
		return err
	}
	var dialOpts []client.Option
	if f.holder != "" {
		dialOpts = append(dialOpts, client.WithHolder(f.holder))
	}
	c, err := a.dial(ctx, dialOpts...)
	if err != nil {
		return err
	}
	defer c.Close()
	if f.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.deadline)
		defer cancel()
	}
	ropts := f.options()
	var bar *progressBar
	if a.tty && !f.quiet {
		bar = newProgressBar(a.stderr, time.Now)
		ropts = append(ropts, client.WithProgress(bar.update))
	}

	o, err := a.createOutput(f.out)
	if err != nil {
		return err
	}
	res, err := c.Render(ctx, req, o.w, ropts...)
	bar.finish()
	if err != nil {
		o.abort()
		return err
	}
	if err := o.commit(); err != nil {
		return err
	}
	printResumes(a.stderr, res)
	return a.printRendered(f, req.GetGenerate().GetSeed(), res)
}

// printRendered reports a verified render: as JSON, or as a summary on
// stdout (stderr, and only on a terminal, when the video went to stdout).
func (a *app) printRendered(f *renderFlags, seed uint64, res *client.Result) error {
	if a.g.json {
		return a.printJSON(renderJSON(f, seed, res))
	}
	summary := a.stdout
	if f.out == "-" {
		if !a.tty {
			return nil
		}
		summary = a.stderr
	}
	fmt.Fprintf(summary, "wrote %s: %d frames %d×%d @%d fps, %s, sha256 %s verified; %s\n",
		f.out, res.Header.GetFrames(), res.Header.GetWidth(), res.Header.GetHeight(), res.Header.GetFps(),
		humanBytes(res.Bytes), res.SHA256[:12], curveLine(seed, res.Header.GetCurve()))
	printLeaseLeft(summary, f, res)
	return nil
}

// printResumes says where a broken stream was resumed, as a share of the
// whole file: "resumed at 61 % on retry 1".
func printResumes(w io.Writer, res *client.Result) {
	for i, off := range res.Resumes {
		fmt.Fprintf(w, "resumed at %d %% on retry %d\n", resumedPercent(off, res.Bytes), i+1)
	}
}

func resumedPercent(offset, total int64) int64 {
	if total <= 0 {
		return 0
	}
	return offset * 100 / total
}

// sourceName is a VideoSource as --json prints it: rendered, cached or
// shared.
func sourceName(s whirlv1.VideoSource) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "VIDEO_SOURCE_"))
}

// printLeaseLeft says what became of a lease the render acquired and did
// not release: kept on request (its id is printed, as --keep-lease
// promises), or left because the release failed, for instance because the
// server was shutting down. Then only the public handle is printed: the id
// is a secret and the lease ends by itself at its expiry.
func printLeaseLeft(w io.Writer, f *renderFlags, res *client.Result) {
	switch {
	case res.Released || f.leaseID != "":
	case f.keep:
		fmt.Fprintf(w, "lease kept (--keep-lease): %s\n", res.Lease.ID)
	case res.ReleaseErr != nil:
		fmt.Fprintf(w, "lease %s not released (%v); it expires at %s unless renewed\n",
			res.Lease.Handle, res.ReleaseErr, res.Lease.ExpireTime.Local().Format(time.TimeOnly))
	}
}

// renderJSON is render's --json result. leaseId is there only with
// --keep-lease, the one case the caller asked for the secret.
func renderJSON(f *renderFlags, seed uint64, res *client.Result) any {
	out := struct {
		Output        string          `json:"output"`
		Bytes         int64           `json:"bytes"`
		SHA256        string          `json:"sha256"`
		Frames        int32           `json:"frames"`
		Width         int32           `json:"width"`
		Height        int32           `json:"height"`
		FPS           int32           `json:"fps"`
		MIMEType      string          `json:"mimeType"`
		Elapsed       string          `json:"elapsed"`
		VideoID       string          `json:"videoId"`
		Source        string          `json:"source"`
		ResumedAt     []int64         `json:"resumedAt,omitempty"`
		Seed          uint64          `json:"seed"`
		Curve         json.RawMessage `json:"curve"`
		LeaseID       string          `json:"leaseId,omitempty"`
		LeaseHandle   string          `json:"leaseHandle,omitempty"`
		ReleaseFailed string          `json:"leaseReleaseError,omitempty"`
	}{
		Output: f.out, Bytes: res.Bytes, SHA256: res.SHA256, Frames: res.Header.GetFrames(),
		Width: res.Header.GetWidth(), Height: res.Header.GetHeight(), FPS: res.Header.GetFps(),
		MIMEType: res.Header.GetMimeType(), Elapsed: protoDuration(res.Trailer.GetElapsed().AsDuration()),
		Seed: seed, Curve: protoJSON(res.Header.GetCurve()),
		VideoID: res.Trailer.GetVideoId(), Source: sourceName(res.Trailer.GetSource()), ResumedAt: res.Resumes,
	}
	if !res.Released && f.leaseID == "" {
		out.LeaseHandle = res.Lease.Handle
		if f.keep {
			out.LeaseID = res.Lease.ID
		} else if res.ReleaseErr != nil {
			out.ReleaseFailed = res.ReleaseErr.Error()
		}
	}
	return out
}
