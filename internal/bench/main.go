// Command bench measures whirl end to end against its own encoder and the
// matplotlib baseline, all in one run (the machine is noisy: only figures
// taken in the same run are compared).
//
//	go run ./internal/bench                      # table
//	go run ./internal/bench --json               # the same as JSON
//	go run ./internal/bench --cpuprofile cpu.out # profile the end-to-end runs
//	go run ./internal/bench --protocols          # gRPC vs Connect (HTTP/1.1, h2c) instead
//	go tool pprof -top cpu.out
//
// What is measured, and how: go doc ./internal/bench/benchrun.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/whirl-dev/whirl/internal/bench/benchrun"
	"github.com/whirl-dev/whirl/internal/bench/protocolbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the bench and prints the report; it returns the exit
// code: 0 when every run succeeded (whatever the targets say), 2 for bad
// flags, 1 otherwise.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := benchrun.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Width, "width", cfg.Width, "video width in pixels (even)")
	fs.IntVar(&cfg.Height, "height", cfg.Height, "video height in pixels (even)")
	fs.IntVar(&cfg.FPS, "fps", cfg.FPS, "frames per second")
	fs.IntVar(&cfg.Frames, "frames", cfg.Frames, "frames per animation")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "curve seed")
	fs.IntVar(&cfg.Wheels, "wheels", cfg.Wheels, "number of wheels")
	fs.IntVar(&cfg.Reps, "reps", cfg.Reps, "repetitions of each measured run; medians are reported")
	fs.IntVar(&cfg.RenderWorkers, "render-workers", 0, "server's render workers per animation (0: the production default, GOMAXPROCS)")
	fs.BoolVar(&cfg.Plain, "plain", cfg.Plain, "also time ffmpeg with its plain defaults writing a regular MP4 (reference only)")
	fs.BoolVar(&cfg.Concurrent, "concurrent", cfg.Concurrent, "also measure five renders at once, encoded as one ffmpeg per render (before segments) and as segments under one budget")
	fs.BoolVar(&cfg.Cache, "cache", cfg.Cache, "also measure the video cache: a cold render, a hit, and five identical requests at once (one render, shared)")
	mpl := &autoBool{}
	fs.Var(mpl, "matplotlib", "run the matplotlib baseline: true, false or auto (auto: when /usr/bin/python3 can import matplotlib)")
	fs.StringVar(&cfg.BaselineDir, "baseline-dir", cfg.BaselineDir, "directory of seed_matplotlib.py; relative paths are taken from the repository root")
	fs.StringVar(&cfg.Python, "python", cfg.Python, "python interpreter for the matplotlib baseline")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a pprof CPU profile of this process during the end-to-end runs to this file")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	protocols := fs.Bool("protocols", false, "instead: the same render over gRPC and over the Connect protocol (HTTP/1.1, h2c) in interleaved rounds (--reps), paired per round")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.Matplotlib = mpl.mode()
	if err := cfg.Check(); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	cfg.Log = stderr

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var rep report
	var err error
	if *protocols {
		rep, err = protocolbench.Measure(ctx, cfg)
	} else {
		rep, err = benchrun.Run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		return 0
	}
	rep.WriteTable(stdout)
	return 0
}

// report is what a measurement returns: a table, or JSON.
type report interface{ WriteTable(io.Writer) }

// autoBool is a flag that is true, false or (unset) auto.
type autoBool struct {
	set, v bool
}

func (a *autoBool) String() string {
	if a == nil || !a.set {
		return "auto"
	}
	return fmt.Sprint(a.v)
}

func (a *autoBool) Set(s string) error {
	switch s {
	case "auto":
		a.set = false
	case "true", "1", "on", "yes":
		a.set, a.v = true, true
	case "false", "0", "off", "no":
		a.set, a.v = true, false
	default:
		return fmt.Errorf("want true, false or auto, got %q", s)
	}
	return nil
}

func (a *autoBool) IsBoolFlag() bool { return true }

func (a *autoBool) mode() benchrun.Tristate {
	switch {
	case !a.set:
		return benchrun.Auto
	case a.v:
		return benchrun.On
	}
	return benchrun.Off
}
