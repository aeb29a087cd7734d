// Command load drives many concurrent whirl clients through the whole
// acquire → render → release cycle for a fixed time and reports admission,
// latency, throughput and the server's memory.
//
//	go run ./internal/load                          # 50 clients, 60 s, own server
//	go run ./internal/load -clients 20 -duration 30s -json
//	go run ./internal/load -addr host:50051 -admin-token T -server-pid 1234
//
// By default it builds ./server, starts it as a child process on
// 127.0.0.1:0 (JSON logs, a random admin token, --capacity passed through,
// metrics on a loopback port) and reads the port from its "serving" log
// line, so the RSS and CPU reported are the server's alone. With -addr it
// targets a running server instead.
//
// Every client loops: AcquireLease (no wait); on RESOURCE_EXHAUSTED (a full
// pool, or the server's per-IP rate limit) it waits as the server says
// (RetryInfo, else the grpc-retry-pushback-ms trailer) with jitter, at most
// -max-backoff, and tries again: a refusal is expected, not a failure.
// Once granted it streams one
// RenderAnimation and checks it (header before chunks, contiguous offsets,
// chunk sizes, trailer last with matching length, frames and SHA-256, clean
// EOF after it), then releases the lease. Anything else unexpected is a
// failure. With an admin token a poller calls ListLeases every 100 ms; the
// clients also count the leases they hold. Either count above capacity is
// an over-admission.
//
// Against a loopback server each connection dials from its own source
// address (127.1.x.y), so the server's per-IP AcquireLease rate limit sees
// 50 callers rather than one (-distinct-ips=false to share one address).
// AcquireLease latency is measured on connections already established.
//
// Besides the counts and latencies, the report carries what is needed to
// tell where latency goes on a shared machine: the server's own handling
// time (its /metrics histogram), the CPU of the server, its ffmpeg children,
// the load generator and everything else on the machine, the run-queue wait
// of the server's and the load generator's threads (schedstat), and how late
// a 2 ms timer in the load generator wakes up. -no-render -hold D keeps the
// admission pattern without any render CPU; -server-cpuprofile and
// -server-trace fetch pprof data from the server (started with --pprof).
//
// Two floor probes run beside the clients for -duration, one sample every
// 10-30 ms: a 32-byte round trip over a loopback TCP connection inside the
// load generator (the machine's own wake-up and scheduling cost), and a gRPC
// health Check on a connection of its own to the server (the transport and
// the server's scheduling without the lease path). The AcquireLease p99
// target line quotes their p99s, to tell the lease path from that floor.
//
// The exit code is 1 if any cycle failed or the server over-admitted, 2 for
// bad flags, 0 otherwise (latency targets are reported, not enforced).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cfg        Config
		size       int
		asJSON     bool
		quiet      bool
		serverBin  string
		serverArgs string
		metrics    string
		cpuProfile string
		traceOut   string
		acqLog     string
		ownSession bool
		selfProf   string
		p99Target  time.Duration
	)
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Clients, "clients", 50, "concurrent clients")
	fs.IntVar(&cfg.Conns, "conns", 0, "gRPC connections shared by the clients (0: one per client)")
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long to start new cycles")
	fs.DurationVar(&cfg.Ramp, "ramp", time.Second, "spread the clients' first calls over this long")
	fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "how long cycles under way at the end may take to finish")
	fs.IntVar(&cfg.Capacity, "capacity", 5, "lease capacity: passed to the server started here; with -addr, the capacity expected (ListLeases' wins when polled)")
	fs.StringVar(&cfg.Addr, "addr", "", "target a running server at host:port instead of starting one")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "with -addr: the server's admin token, to poll ListLeases")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "with -addr: the server's pid, to read its RSS and CPU from /proc")
	fs.StringVar(&metrics, "metrics-addr", "", "with -addr: the server's metrics listener (host:port), to read its own AcquireLease timings")
	fs.StringVar(&serverBin, "server-bin", "", "prebuilt server binary to start (default: go build ./server)")
	fs.BoolVar(&ownSession, "server-session", false, "start the server in a session of its own (its own CPU share under Linux autogroup scheduling)")
	fs.StringVar(&serverArgs, "server-args", "", "extra flags for the server started here, space separated (e.g. \"--render-slots 1\")")
	fs.BoolVar(&cfg.DistinctIPs, "distinct-ips", true, "for a loopback server, give each connection its own source address 127.1.x.y, so per-IP limits treat the clients as separate callers")
	fs.BoolVar(&cfg.NoRender, "no-render", false, "cycles are acquire → release only (isolates the admission path)")
	fs.DurationVar(&cfg.Hold, "hold", 0, "with -no-render: hold each lease this long before releasing it, in place of a render")
	fs.IntVar(&size, "size", 320, "video width and height in pixels (even, 64-1920)")
	fs.IntVar(&cfg.Frames, "frames", 60, "frames per video")
	fs.IntVar(&cfg.FPS, "fps", 30, "frames per second")
	fs.DurationVar(&cfg.MaxBackoff, "max-backoff", 2*time.Second, "cap on the wait after a refusal (RetryInfo is honoured up to it)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the load's random choices (0: random)")
	fs.DurationVar(&p99Target, "acquire-p99-target", 2*time.Millisecond, "AcquireLease p99 target, reported as met or missed")
	fs.StringVar(&cpuProfile, "server-cpuprofile", "", "save a CPU profile of the server over the run to this file (needs pprof: on for the server started here)")
	fs.StringVar(&traceOut, "server-trace", "", "save a 5 s execution trace of the server from mid-run to this file")
	fs.StringVar(&acqLog, "acquire-log", "", "write every AcquireLease call (start, latency, client, outcome) to this CSV file")
	fs.StringVar(&selfProf, "cpuprofile", "", "write a CPU profile of the load generator itself to this file")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "load: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.Width, cfg.Height = size, size
	switch {
	case size < 64 || size > 1920 || size%2 != 0:
		fmt.Fprintln(stderr, "load: -size must be even and 64-1920")
		return 2
	case cfg.Clients < 1 || cfg.Duration <= 0 || cfg.Capacity < 0:
		fmt.Fprintln(stderr, "load: -clients must be >= 1, -duration > 0, -capacity >= 0")
		return 2
	case cfg.Addr == "" && (cfg.AdminToken != "" || cfg.ServerPID != 0 || metrics != ""):
		fmt.Fprintln(stderr, "load: -admin-token, -server-pid and -metrics-addr go with -addr")
		return 2
	case cfg.Addr == "" && cfg.Capacity < 1:
		fmt.Fprintln(stderr, "load: -capacity must be >= 1 for the server started here")
		return 2
	}
	if acqLog != "" {
		f, err := os.Create(acqLog)
		if err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 2
		}
		defer f.Close()
		bw := bufio.NewWriter(f)
		defer bw.Flush()
		cfg.AcquireLog = bw
	}
	if selfProf != "" {
		f, err := os.Create(selfProf)
		if err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	progress := stderr
	if quiet {
		progress = io.Discard
	}
	cfg.Progress = progress

	mode := "external"
	var child *childServer
	if cfg.Addr == "" {
		mode = "child"
		var err error
		child, err = startChild(ctx, childOptions{
			Binary: serverBin, Capacity: cfg.Capacity, Pprof: cpuProfile != "" || traceOut != "",
			Extra: strings.Fields(serverArgs), Log: progress, OwnSession: ownSession,
		})
		if err != nil {
			fmt.Fprintln(stderr, "load: starting the server:", err)
			return 1
		}
		cfg.Addr, cfg.AdminToken, cfg.ServerPID, metrics = child.Addr, child.AdminToken, child.PID, child.MetricsAddr
		fmt.Fprintf(progress, "server pid %d serving on %s (metrics %s)\n", child.PID, child.Addr, child.MetricsAddr)
	}
	stopChild := func() error {
		if child == nil {
			return nil
		}
		err := child.Stop()
		child = nil
		return err
	}
	defer stopChild()

	// Optional profiles of the server, taken while the load runs.
	profiles := startProfiles(ctx, metrics, cpuProfile, traceOut, cfg.Duration, progress)

	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		if child != nil {
			fmt.Fprintf(stderr, "server log tail:\n%s\n", child.Tail())
		}
		return 1
	}
	profiles()
	rep.Mode = mode
	if metrics != "" {
		if m, err := scrapeServer(ctx, metrics); err != nil {
			fmt.Fprintln(progress, "load: reading server metrics:", err)
		} else {
			rep.ServerMetrics = m
		}
	}
	if child != nil {
		n := child.ErrorLogs()
		rep.ServerErrorLogs = &n
		if n > 0 {
			fmt.Fprintf(progress, "server log tail:\n%s\n", child.Tail())
		}
	}
	rep.judge(float64(p99Target) / float64(time.Millisecond))
	if err := stopChild(); err != nil {
		fmt.Fprintln(progress, "load: server exit:", err)
	}

	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.writeTable(stdout)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// startProfiles fetches a CPU profile over most of the run and a short
// execution trace from its middle, from the server's pprof endpoint. The
// returned func waits for them.
func startProfiles(ctx context.Context, metricsAddr, cpuProfile, traceOut string, d time.Duration, log io.Writer) (wait func()) {
	if cpuProfile == "" && traceOut == "" {
		return func() {}
	}
	if metricsAddr == "" {
		fmt.Fprintln(log, "load: no metrics address: server profiles skipped")
		return func() {}
	}
	done := make(chan struct{}, 2)
	n := 0
	get := func(delay time.Duration, url, path string) {
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			if err := fetchToFile(ctx, url, path); err != nil {
				fmt.Fprintln(log, "load: server profile:", err)
				return
			}
			fmt.Fprintln(log, "load: saved", path)
		}()
	}
	base := "http://" + metricsAddr + "/debug/pprof/"
	if cpuProfile != "" {
		secs := max(int(d.Seconds())-2, 1)
		get(time.Second, fmt.Sprintf("%sprofile?seconds=%d", base, secs), cpuProfile)
	}
	if traceOut != "" {
		get(max(d/2-2500*time.Millisecond, 0), base+"trace?seconds=5", traceOut)
	}
	return func() {
		for range n {
			<-done
		}
	}
}
