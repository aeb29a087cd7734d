package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/whirl-dev/whirl/internal/load/loadrun"
)

// errPrinted is a flag error the flag package has already shown.
var errPrinted = errors.New("flags")

// options are the command's flags: the run's Config and what the command
// does around it.
type options struct {
	cfg         loadrun.Config
	asJSON      bool
	serverBin   string
	serverArgs  []string
	ownSession  bool
	cpuProfile  string // the server's
	traceOut    string
	acquireLog  string
	selfProfile string
	p99Target   time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	var size int
	var quiet bool
	var flood loadrun.Flood
	var serverArgs string
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &o.cfg
	fs.IntVar(&c.Clients, "clients", 50, "concurrent clients")
	fs.IntVar(&c.Conns, "conns", 0, "gRPC connections shared by the clients (0: one per client)")
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "how long to start new cycles")
	fs.DurationVar(&c.Ramp, "ramp", time.Second, "spread the clients' first calls over this long")
	fs.DurationVar(&c.Drain, "drain", 30*time.Second, "how long cycles under way at the end may take to finish")
	fs.IntVar(&c.Capacity, "capacity", 5, "lease capacity: passed to the server started here; with -addr, the capacity expected (ListLeases' wins when polled)")
	fs.StringVar(&c.Addr, "addr", "", "target a running server at host:port instead of starting one")
	fs.StringVar(&c.AdminToken, "admin-token", "", "with -addr: the server's admin token, to poll ListLeases")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "with -addr: the server's pid, to read its RSS and CPU from /proc")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "with -addr: the server's metrics listener (host:port), to read its own AcquireLease timings")
	fs.StringVar(&o.serverBin, "server-bin", "", "prebuilt server binary to start (default: go build ./server)")
	fs.BoolVar(&o.ownSession, "server-session", false, "start the server in a session of its own (its own CPU share under Linux autogroup scheduling)")
	fs.StringVar(&serverArgs, "server-args", "", "extra flags for the server started here, space separated (e.g. \"--render-slots 1\")")
	fs.BoolVar(&c.DistinctIPs, "distinct-ips", true, "for a loopback server, give each connection its own source address 127.1.x.y, so per-IP limits treat the clients as separate callers")
	fs.BoolVar(&c.NoRender, "no-render", false, "cycles are acquire → release only (isolates the admission path)")
	fs.DurationVar(&c.Hold, "hold", 0, "with -no-render: hold each lease this long before releasing it, in place of a render")
	fs.IntVar(&size, "size", 320, "video width and height in pixels (even, 64-1920)")
	fs.IntVar(&c.Frames, "frames", 60, "frames per video")
	fs.IntVar(&c.FPS, "fps", 30, "frames per second")
	fs.DurationVar(&c.MaxBackoff, "max-backoff", 2*time.Second, "cap on the wait after a refusal (RetryInfo is honoured up to it)")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the load's random choices (0: random)")
	fs.DurationVar(&o.p99Target, "acquire-p99-target", 2*time.Millisecond, "AcquireLease p99 target, reported as met or missed")
	fs.StringVar(&o.cpuProfile, "server-cpuprofile", "", "save a CPU profile of the server over the run to this file (needs pprof: on for the server started here)")
	fs.StringVar(&o.traceOut, "server-trace", "", "save a 5 s execution trace of the server from mid-run to this file")
	fs.StringVar(&o.acquireLog, "acquire-log", "", "write every AcquireLease call (start, latency, client, outcome) to this CSV file")
	fs.StringVar(&o.selfProfile, "cpuprofile", "", "write a CPU profile of the load generator itself to this file")
	fs.IntVar(&flood.Calls, "flood", 0, "abuse test: one client from 127.0.0.2 keeps this many RenderStill calls under way while the clients, all from 127.0.0.3, cycle and a GenerateCurve probe runs (0: no flood)")
	fs.IntVar(&flood.Size, "flood-size", 2048, "with -flood: the stills' width and height")
	fs.IntVar(&flood.Conns, "flood-conns", 10, "with -flood: the flooding client's connections")
	fs.DurationVar(&flood.Idle, "flood-idle", 20*time.Second, "with -flood: how long the GenerateCurve probe runs alone first, for its idle baseline")
	fs.BoolVar(&flood.IgnoreRetry, "flood-ignore-retry", false, "with -flood: the flooder calls again at once when refused, instead of after the server's retry hint")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errPrinted
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.Width, c.Height = size, size
	if flood.Calls > 0 {
		c.Flood = &flood
	}
	o.serverArgs = strings.Fields(serverArgs)
	c.Progress = stderr
	if quiet {
		c.Progress = io.Discard
	}
	return o, o.check(size)
}

// check refuses flag combinations that cannot run.
func (o *options) check(size int) error {
	c := o.cfg
	switch {
	case size < 64 || size > 1920 || size%2 != 0:
		return errors.New("-size must be even and 64-1920")
	case c.Clients < 1 || c.Duration <= 0 || c.Capacity < 0:
		return errors.New("-clients must be >= 1, -duration > 0, -capacity >= 0")
	case c.Addr == "" && (c.AdminToken != "" || c.ServerPID != 0 || c.MetricsAddr != ""):
		return errors.New("-admin-token, -server-pid and -metrics-addr go with -addr")
	case c.Addr == "" && c.Capacity < 1:
		return errors.New("-capacity must be >= 1 for the server started here")
	case c.Flood != nil && (c.Flood.Size < 64 || c.Flood.Size > 4096 || c.Flood.Idle <= 0 || c.Flood.Conns < 1):
		return errors.New("-flood-size must be 64-4096, -flood-idle > 0 and -flood-conns >= 1")
	}
	return nil
}
