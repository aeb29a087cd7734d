package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

func (a *app) curve(ctx context.Context, name string, args []string) error {
	fs := a.newFlagSet(name, "[--seed N] [--wheels N] [--k-fold K] [--congruency C] [--shape S,...]", "Print the summary and wheel parameters of the curve a seed describes")
	var cf curveFlags
	cf.register(fs)
	if _, err := a.parse(fs, args, 0); err != nil {
		return err
	}
	gen, err := cf.request()
	if err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	curve, err := c.GenerateCurve(ctx, gen)
	if err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(struct {
			Seed  uint64          `json:"seed"`
			Curve json.RawMessage `json:"curve"`
		}{gen.GetSeed(), protoJSON(curve)})
	}
	a.printCurve(gen.GetSeed(), curve)
	return nil
}

func (a *app) printCurve(seed uint64, c *whirlv1.Curve) {
	s := c.GetSummary()
	fmt.Fprintf(a.stdout, "seed %d: %d wheels, %d-fold (congruency %d), symmetry %d\n",
		seed, s.GetWheels(), s.GetKFold(), s.GetCongruency(), s.GetSymmetry())
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSHAPE\tRADIUS\tFREQUENCY\tPHASE\tASPECT")
	for i, w := range c.GetWheels() {
		aspect := ""
		if w.GetShape() == whirlv1.Shape_SHAPE_ELLIPSE {
			aspect = strconv.FormatFloat(w.GetAspect(), 'f', 3, 64)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.6f\t%d\t%.6f\t%s\n", i+1, shapeName(w.GetShape()), w.GetRadius(), w.GetFrequency(), w.GetPhase(), aspect)
	}
	_ = tw.Flush()
}

func (a *app) still(ctx context.Context, name string, args []string) error {
	fs := a.newFlagSet(name, "[--seed N] [--style wheels|trace] [--size 720] [--frame N] [--shape S] -o FILE.png", "Render a PNG still of a curve: the finished curve, or one frame of its animation")
	var cf curveFlags
	cf.register(fs)
	var lf lookFlags
	lf.register(fs)
	var frame frameFlag
	fs.Var(&frame, "frame", "draw frame `N` of the animation (0 <= N < --frames) instead of the finished curve")
	frames := fs.Int("frames", 300, "length of the animation --frame refers to")
	out := fs.String("o", "", "output `file` (- for stdout); required")
	if _, err := a.parse(fs, args, 0); err != nil {
		return err
	}
	if err := a.checkOutput("still", "image", *out); err != nil {
		return err
	}
	gen, err := cf.request()
	if err != nil {
		return err
	}
	w, h := lf.dims()
	req := &whirlv1.RenderStillRequest{
		Source: &whirlv1.RenderStillRequest_Generate{Generate: gen},
		Width:  w, Height: h, Style: lf.style.v, Frames: int32(*frames), Appearance: lf.appearance(),
	}
	if frame.set {
		req.Frame = proto.Int32(frame.n)
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.RenderStill(ctx, req)
	if err != nil {
		return err
	}
	o, err := a.createOutput(*out)
	if err != nil {
		return err
	}
	if _, err := o.w.Write(resp.GetPng()); err != nil {
		o.abort()
		return err
	}
	if err := o.commit(); err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(struct {
			Output string          `json:"output"`
			Width  int32           `json:"width"`
			Height int32           `json:"height"`
			Bytes  int             `json:"bytes"`
			Seed   uint64          `json:"seed"`
			Curve  json.RawMessage `json:"curve"`
		}{*out, resp.GetWidth(), resp.GetHeight(), len(resp.GetPng()), gen.GetSeed(), protoJSON(resp.GetCurve())})
	}
	if *out != "-" {
		fmt.Fprintf(a.stdout, "wrote %s: %d×%d PNG, %s; %s\n", *out, resp.GetWidth(), resp.GetHeight(), humanBytes(int64(len(resp.GetPng()))), curveLine(gen.GetSeed(), resp.GetCurve()))
	}
	return nil
}

func curveLine(seed uint64, c *whirlv1.Curve) string {
	s := c.GetSummary()
	return fmt.Sprintf("seed %d, %d wheels (%s), %d-fold", seed, s.GetWheels(), shapeCounts(s.GetShapes()), s.GetSymmetry())
}

// shapeCounts summarises shapes in order of first appearance:
// "3 circle, 2 square".
func shapeCounts(shapes []whirlv1.Shape) string {
	var order []whirlv1.Shape
	n := map[whirlv1.Shape]int{}
	for _, sh := range shapes {
		if n[sh] == 0 {
			order = append(order, sh)
		}
		n[sh]++
	}
	parts := make([]string, len(order))
	for i, sh := range order {
		parts[i] = fmt.Sprintf("%d %s", n[sh], shapeName(sh))
	}
	return strings.Join(parts, ", ")
}

// checkOutput checks a command's -o value: required, and not stdout when
// stdout carries the --json result.
func (a *app) checkOutput(cmd, what, out string) error {
	if out == "" {
		return usagef("%s: -o FILE is required", cmd)
	}
	if out == "-" && a.g.json {
		return usagef("%s: --json prints the result on stdout; write the %s to a file (-o FILE)", cmd, what)
	}
	return nil
}

func (a *app) render(ctx context.Context, name string, args []string) error {
	fs := a.newFlagSet(name, "[--seed N] [--style wheels|trace] [--frames 300] [--fps 30] [--size 720] [--shape S] -o FILE.mp4",
		"Render an H.264 MP4 of a curve being drawn. Acquires a lease (retrying while all are taken, or queueing with --wait), keeps it alive, checks the video against the server's checksum and releases the lease. The file is written only if the video is complete and verified")
	var cf curveFlags
	cf.register(fs)
	var lf lookFlags
	lf.register(fs)
	fps := fs.Int("fps", 30, "frames per second, 1-60")
	frames := fs.Int("frames", 300, "number of frames, 1-3600")
	out := fs.String("o", "", "output `file` (- for stdout); required")
	leaseID := fs.String("lease", "", "render under this lease `id` (from 'whirl lease acquire'); it is not released")
	keep := fs.Bool("keep-lease", false, "keep the lease acquired for this render, and print its id")
	wait := fs.Bool("wait", false, "when every lease is taken, queue on the server instead of retrying")
	holder := fs.String("holder", "", "holder `label` shown to operators (default whirl-client@HOST)")
	deadline := fs.Duration("deadline", 0, "give up after this `duration`, waiting for a lease included (0 = never)")
	quiet := fs.Bool("quiet", false, "no progress display, even on a terminal")
	if _, err := a.parse(fs, args, 0); err != nil {
		return err
	}
	if err := a.checkOutput("render", "video", *out); err != nil {
		return err
	}
	gen, err := cf.request()
	if err != nil {
		return err
	}
	w, h := lf.dims()
	req := &whirlv1.RenderAnimationRequest{
		Source: &whirlv1.RenderAnimationRequest_Generate{Generate: gen},
		Video: &whirlv1.VideoOptions{
			Width: w, Height: h, Fps: int32(*fps), Frames: int32(*frames), Style: lf.style.v, Appearance: lf.appearance(),
		},
	}
	var opts []client.Option
	if *holder != "" {
		opts = append(opts, client.WithHolder(*holder))
	}
	c, err := a.dial(ctx, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	if *deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *deadline)
		defer cancel()
	}
	ropts := []client.RenderOption{}
	if *leaseID != "" {
		ropts = append(ropts, client.WithLease(*leaseID))
	}
	if *keep {
		ropts = append(ropts, client.KeepLease())
	}
	if *wait {
		ropts = append(ropts, client.WithAcquirePolicy(client.AcquireWait))
	}
	var bar *progressBar
	if a.tty && !*quiet {
		bar = newProgressBar(a.stderr, time.Now)
		ropts = append(ropts, client.WithProgress(bar.update))
	}

	o, err := a.createOutput(*out)
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
	kept := ""
	if !res.Released {
		kept = res.Lease.ID
	}
	if a.g.json {
		return a.printJSON(struct {
			Output   string          `json:"output"`
			Bytes    int64           `json:"bytes"`
			SHA256   string          `json:"sha256"`
			Frames   int32           `json:"frames"`
			Width    int32           `json:"width"`
			Height   int32           `json:"height"`
			FPS      int32           `json:"fps"`
			MIMEType string          `json:"mimeType"`
			Elapsed  string          `json:"elapsed"`
			Seed     uint64          `json:"seed"`
			Curve    json.RawMessage `json:"curve"`
			LeaseID  string          `json:"leaseId,omitempty"`
		}{*out, res.Bytes, res.SHA256, res.Header.GetFrames(), res.Header.GetWidth(), res.Header.GetHeight(), res.Header.GetFps(),
			res.Header.GetMimeType(), protoDuration(res.Trailer.GetElapsed().AsDuration()), gen.GetSeed(), protoJSON(res.Header.GetCurve()), kept})
	}
	summary := a.stdout
	if *out == "-" {
		if !a.tty {
			return nil
		}
		summary = a.stderr
	}
	fmt.Fprintf(summary, "wrote %s: %d frames %d×%d @%d fps, %s, sha256 %s verified; %s\n",
		*out, res.Header.GetFrames(), res.Header.GetWidth(), res.Header.GetHeight(), res.Header.GetFps(),
		humanBytes(res.Bytes), res.SHA256[:12], curveLine(gen.GetSeed(), res.Header.GetCurve()))
	if kept != "" && *leaseID == "" {
		fmt.Fprintf(summary, "lease kept: %s\n", kept)
	}
	return nil
}

func (a *app) lease(ctx context.Context, name string, args []string) error {
	usage := func(w io.Writer) {
		fmt.Fprint(w, `Usage: whirl lease acquire [--holder LABEL] [--wait | --retry] [--deadline D] [--lease ID]
       whirl lease renew ID
       whirl lease release ID

acquire prints the new lease's id (a secret bearer token) on stdout.
Run 'whirl lease SUBCOMMAND -h' for flags.
`)
	}
	if len(args) == 0 {
		usage(a.stderr)
		return &usageError{msg: "lease: missing subcommand", printed: true}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(a.stdout)
		return nil
	case "acquire":
		return a.leaseAcquire(ctx, args[1:])
	case "renew":
		return a.leaseRenew(ctx, args[1:])
	case "release":
		return a.leaseRelease(ctx, args[1:])
	}
	return usagef("lease: unknown subcommand %q (want acquire, renew or release)", args[0])
}

func (a *app) leaseAcquire(ctx context.Context, args []string) error {
	fs := a.newFlagSet("lease acquire", "[--holder LABEL] [--wait | --retry] [--deadline D] [--lease ID]",
		"Acquire a lease and print its id. With every lease taken it fails (exit 3) unless --wait (queue on the server) or --retry (retry after the server's hint) is given")
	holder := fs.String("holder", "", "holder `label` shown to operators (default whirl-client@HOST)")
	wait := fs.Bool("wait", false, "queue on the server until a lease frees (first come, first served)")
	retry := fs.Bool("retry", false, "retry after the server's RetryInfo delay while every lease is taken")
	deadline := fs.Duration("deadline", 0, "give up waiting or retrying after this `duration` (0 = never)")
	existing := fs.String("lease", "", "a lease `id` you hold: renewed and printed if still live")
	if _, err := a.parse(fs, args, 0); err != nil {
		return err
	}
	if *wait && *retry {
		return usagef("lease acquire: --wait and --retry exclude each other")
	}
	o := client.AcquireOptions{Holder: *holder, LeaseID: *existing}
	switch {
	case *wait:
		o.Policy = client.AcquireWait
	case *retry:
		o.Policy = client.AcquireRetry
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if *deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *deadline)
		defer cancel()
	}
	l, err := c.Acquire(ctx, o)
	if err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(leaseView(l))
	}
	fmt.Fprintln(a.stdout, l.ID)
	if a.tty {
		fmt.Fprintf(a.stderr, "handle %s, holder %q, expires %s (ttl %s) unless renewed\n", l.Handle, l.Holder, l.ExpireTime.Local().Format(time.TimeOnly), l.TTL)
	}
	return nil
}

func (a *app) leaseRenew(ctx context.Context, args []string) error {
	fs := a.newFlagSet("lease renew", "ID", "Renew a lease: push its expiry out by its TTL")
	pos, err := a.parse(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	l, err := c.Renew(ctx, pos[0])
	if err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(leaseView(l))
	}
	fmt.Fprintf(a.stdout, "renewed lease %s: expires %s (in %s)\n", l.Handle, l.ExpireTime.Local().Format(time.TimeOnly), time.Until(l.ExpireTime).Round(time.Second))
	return nil
}

func (a *app) leaseRelease(ctx context.Context, args []string) error {
	fs := a.newFlagSet("lease release", "ID", "Release a lease: free its slot at once")
	pos, err := a.parse(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Release(ctx, pos[0]); err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(map[string]bool{"released": true})
	}
	fmt.Fprintln(a.stdout, "released")
	return nil
}

func (a *app) leases(ctx context.Context, name string, args []string) error {
	fs := a.newFlagSet(name, "", "List the server's live leases (admin: needs --token or WHIRL_TOKEN)")
	if _, err := a.parse(fs, args, 0); err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.ListLeases(ctx)
	if err != nil {
		return err
	}
	if a.g.json {
		type info struct {
			Handle        string    `json:"handle"`
			Holder        string    `json:"holder"`
			AcquireTime   time.Time `json:"acquireTime"`
			ExpireTime    time.Time `json:"expireTime"`
			MaxExpireTime time.Time `json:"maxExpireTime"`
			Rendering     bool      `json:"rendering"`
		}
		out := struct {
			Count    int    `json:"count"`
			Capacity int    `json:"capacity"`
			Waiting  int    `json:"waiting"`
			Leases   []info `json:"leases"`
		}{p.Count, p.Capacity, p.Waiting, []info{}}
		for _, l := range p.Leases {
			out.Leases = append(out.Leases, info{l.Handle, l.Holder, l.AcquireTime, l.ExpireTime, l.MaxExpireTime, l.Rendering})
		}
		return a.printJSON(out)
	}
	fmt.Fprintf(a.stdout, "%d of %d leases live, %d waiting\n", p.Count, p.Capacity, p.Waiting)
	if len(p.Leases) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HANDLE\tHOLDER\tEXPIRES\tRENDERING")
	now := time.Now()
	for _, l := range p.Leases {
		rendering := "no"
		if l.Rendering {
			rendering = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (in %s)\t%s\n", l.Handle, l.Holder, l.ExpireTime.Local().Format(time.TimeOnly), l.ExpireTime.Sub(now).Round(time.Second), rendering)
	}
	return tw.Flush()
}

func (a *app) revoke(ctx context.Context, name string, args []string) error {
	fs := a.newFlagSet(name, "HANDLE", "Revoke a lease by the handle 'whirl leases' shows, as if it had expired (admin: needs --token)")
	pos, err := a.parse(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.RevokeLease(ctx, pos[0]); err != nil {
		return err
	}
	if a.g.json {
		return a.printJSON(map[string]string{"revoked": pos[0]})
	}
	fmt.Fprintf(a.stdout, "revoked %s\n", pos[0])
	return nil
}

type leaseJSON struct {
	LeaseID       string    `json:"leaseId"`
	Handle        string    `json:"handle"`
	Holder        string    `json:"holder"`
	ExpireTime    time.Time `json:"expireTime"`
	MaxExpireTime time.Time `json:"maxExpireTime"`
	TTL           string    `json:"ttl"`
}

func leaseView(l *client.Lease) leaseJSON {
	return leaseJSON{l.ID, l.Handle, l.Holder, l.ExpireTime, l.MaxExpireTime, protoDuration(l.TTL)}
}

// protoDuration formats d as protobuf's JSON mapping does: "300s", "1.5s".
func protoDuration(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func protoJSON(m proto.Message) json.RawMessage {
	b, err := protojson.Marshal(m)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// output is where a command writes its image or video: stdout for "-", or
// a temporary file beside the target that is renamed into place only when
// the result is complete, so a failed render never leaves a truncated file.
type output struct {
	path string
	f    *os.File
	w    io.Writer
}

func (a *app) createOutput(path string) (*output, error) {
	if path == "-" {
		return &output{path: path, w: a.stdout}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return nil, err
	}
	return &output{path: path, f: f, w: f}, nil
}

func (o *output) commit() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Chmod(0o644)
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.f.Name(), o.path)
	}
	if err != nil {
		_ = os.Remove(o.f.Name())
	}
	return err
}

func (o *output) abort() {
	if o.f != nil {
		_ = o.f.Close()
		_ = os.Remove(o.f.Name())
	}
}
