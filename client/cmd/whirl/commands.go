package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/whirl-dev/whirl/client"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// commands is every command, in the order the usage lists them.
func commands() []command {
	return []command{
		{name: "curve", summary: "print a curve's summary and wheel parameters",
			about: "Print the summary and wheel parameters of the curve a seed describes", define: defineCurve},
		{name: "still", summary: "render a PNG still",
			about: "Render a PNG still of a curve: the finished curve, or one frame of its animation", define: defineStill},
		{name: "render", summary: "render an MP4 animation",
			about:  "Render an H.264 MP4 of a curve being drawn. Acquires a lease (retrying while all are taken, or queueing with --wait), keeps it alive, checks the video against the server's checksum and releases the lease. The file is written only if the video is complete and verified",
			define: defineRender},
		{name: "get", args: "VIDEO_ID", nPos: 1, summary: "download a finished video by its id (no lease)",
			about:  "Download a finished video by the video id a render reported (--json's videoId), from the server's cache: no lease, no render. The file is written only once its bytes match the server's SHA-256. Fails with NOT_FOUND when the server no longer holds the video",
			define: defineGet},
		{name: "lease acquire", summary: "acquire a lease and print its id (a secret bearer token)",
			about:  "Acquire a lease and print its id. With every lease taken it fails (exit 3) unless --wait (queue on the server) or --retry (retry after the server's hint) is given",
			define: defineLeaseAcquire},
		{name: "lease renew", args: "ID", nPos: 1, summary: "renew a lease: push its expiry out by its TTL", define: defineLeaseRenew},
		{name: "lease release", args: "ID", nPos: 1, summary: "release a lease: free its slot at once", define: defineLeaseRelease},
		{name: "leases", summary: "list the server's leases (admin: --token)",
			about: "List the server's live leases (admin: needs --token or WHIRL_TOKEN)", define: defineLeases},
		{name: "revoke", args: "HANDLE", nPos: 1, summary: "revoke a lease by its handle (admin: --token)",
			about: "Revoke a lease by the handle 'whirl leases' shows, as if it had expired (admin: needs --token)", define: defineRevoke},
		{name: "version", summary: "print the client's build: module version, VCS revision, Go release (also --version)", define: defineVersion},
	}
}

func defineCurve(fs *flag.FlagSet) runner {
	var cf curveFlags
	cf.register(fs)
	return func(a *app, ctx context.Context, _ []string) error { return a.curve(ctx, &cf) }
}

func (a *app) curve(ctx context.Context, cf *curveFlags) error {
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

// stillFlags are the flags of still.
type stillFlags struct {
	curve  curveFlags
	look   lookFlags
	frame  frameFlag
	frames int
	out    string
}

func defineStill(fs *flag.FlagSet) runner {
	f := &stillFlags{}
	f.curve.register(fs)
	f.look.register(fs)
	fs.Var(&f.frame, "frame", "draw frame `N` of the animation (0 <= N < --frames) instead of the finished curve")
	fs.IntVar(&f.frames, "frames", 300, "length of the animation --frame refers to")
	fs.StringVar(&f.out, "o", "", "output `file` (- for stdout); required")
	return func(a *app, ctx context.Context, _ []string) error { return a.still(ctx, f) }
}

func (a *app) still(ctx context.Context, f *stillFlags) error {
	if err := a.checkOutput("still", "image", f.out); err != nil {
		return err
	}
	gen, err := f.curve.request()
	if err != nil {
		return err
	}
	w, h := f.look.dims()
	req := &whirlv1.RenderStillRequest{
		Source: &whirlv1.RenderStillRequest_Generate{Generate: gen},
		Width:  w, Height: h, Style: f.look.style.v, Frames: int32(f.frames), Appearance: f.look.appearance(),
	}
	if f.frame.set {
		req.Frame = proto.Int32(f.frame.n)
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
	o, err := a.createOutput(f.out)
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
		}{f.out, resp.GetWidth(), resp.GetHeight(), len(resp.GetPng()), gen.GetSeed(), protoJSON(resp.GetCurve())})
	}
	if f.out != "-" {
		fmt.Fprintf(a.stdout, "wrote %s: %d×%d PNG, %s; %s\n", f.out, resp.GetWidth(), resp.GetHeight(), humanBytes(int64(len(resp.GetPng()))), curveLine(gen.GetSeed(), resp.GetCurve()))
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

func defineLeaseAcquire(fs *flag.FlagSet) runner {
	holder := fs.String("holder", "", "holder `label` shown to operators (default whirl-client@HOST)")
	wait := fs.Bool("wait", false, "queue on the server until a lease frees (first come, first served)")
	retry := fs.Bool("retry", false, "retry after the server's RetryInfo delay while every lease is taken")
	deadline := fs.Duration("deadline", 0, "give up waiting or retrying after this `duration` (0 = never)")
	existing := fs.String("lease", "", "a lease `id` you hold: renewed and printed if still live")
	return func(a *app, ctx context.Context, _ []string) error {
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
		return a.leaseAcquire(ctx, o, *deadline)
	}
}

func (a *app) leaseAcquire(ctx context.Context, o client.AcquireOptions, deadline time.Duration) error {
	c, err := a.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, deadline)
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

func defineLeaseRenew(*flag.FlagSet) runner {
	return func(a *app, ctx context.Context, pos []string) error {
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
}

func defineLeaseRelease(*flag.FlagSet) runner {
	return func(a *app, ctx context.Context, pos []string) error {
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
}

func defineLeases(*flag.FlagSet) runner {
	return func(a *app, ctx context.Context, _ []string) error { return a.leases(ctx) }
}

func (a *app) leases(ctx context.Context) error {
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

func defineRevoke(*flag.FlagSet) runner {
	return func(a *app, ctx context.Context, pos []string) error {
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
}
