// Command load drives many concurrent whirl clients through the whole
// acquire → render → release cycle for a fixed time and reports admission,
// latency, throughput and the server's memory (package loadrun says what a
// run does and measures).
//
//	go run ./internal/load                          # 50 clients, 60 s, own server
//	go run ./internal/load -clients 20 -duration 30s -json
//	go run ./internal/load -addr host:50051 -admin-token T -server-pid 1234
//	go run ./internal/load -flood 50 -clients 1 # one client floods stills
//
// By default it builds ./server, starts it as a child process on
// 127.0.0.1:0 (JSON logs, a random admin token, --capacity passed through,
// metrics on a loopback port) and reads the port from its "serving" log
// line, so the RSS and CPU reported are the server's alone. With -addr it
// targets a running server instead. -server-cpuprofile and -server-trace
// fetch pprof data from the server started here (with --pprof).
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
	"syscall"
	"time"

	"github.com/whirl-dev/whirl/internal/load/loadrun"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: flags, the server, the run, the report. It returns
// the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errPrinted) {
			fmt.Fprintln(stderr, "load:", err)
		}
		return 2
	}
	closeOutputs, err := o.openOutputs()
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 2
	}
	defer closeOutputs()

	var child *childServer
	if o.cfg.Addr == "" {
		if child, err = startChild(ctx, o); err != nil {
			fmt.Fprintln(stderr, "load: starting the server:", err)
			return 1
		}
		defer child.stop(o.cfg.Progress)
	}
	profiles := startProfiles(ctx, o.cfg.MetricsAddr, o.cpuProfile, o.traceOut, o.cfg.Duration, o.cfg.Progress)
	rep, err := loadrun.Run(ctx, o.cfg)
	profiles()
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		if child != nil {
			fmt.Fprintf(stderr, "server log tail:\n%s\n", child.srv.Tail())
		}
		return 1
	}
	rep.Mode = "external"
	if child != nil {
		child.fill(rep, o.cfg.Progress)
	}
	rep.Judge(float64(o.p99Target) / float64(time.Millisecond))
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.WriteTable(stdout)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// openOutputs opens the optional -acquire-log and -cpuprofile files; the
// returned func flushes and closes them.
func (o *options) openOutputs() (func(), error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if o.acquireLog != "" {
		f, err := os.Create(o.acquireLog)
		if err != nil {
			return nil, err
		}
		bw := bufio.NewWriter(f)
		closers = append(closers, func() { _ = bw.Flush(); _ = f.Close() })
		o.cfg.AcquireLog = bw
	}
	if o.selfProfile != "" {
		f, err := os.Create(o.selfProfile)
		if err != nil {
			closeAll()
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			closeAll()
			return nil, err
		}
		closers = append(closers, func() { pprof.StopCPUProfile(); _ = f.Close() })
	}
	return closeAll, nil
}
