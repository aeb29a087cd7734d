package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/whirl-dev/whirl/internal/load/loadrun"
	"github.com/whirl-dev/whirl/internal/serverproc"
)

// childServer is the server binary this command started, so that the RSS
// and CPU reported are the server's alone.
type childServer struct {
	srv *serverproc.Server
	dir string // holds the binary built here, if any
}

// startChild builds ./server (unless -server-bin) and starts it on a
// loopback port with JSON logs, a random admin token and metrics on a
// loopback port, and points the run's Config at it.
func startChild(ctx context.Context, o *options) (*childServer, error) {
	c := &childServer{}
	bin := o.serverBin
	if bin == "" {
		var err error
		if c.dir, err = os.MkdirTemp("", "whirl-load-"); err != nil {
			return nil, err
		}
		fmt.Fprintln(o.cfg.Progress, "building ./server ...")
		if bin, err = serverproc.Build(ctx, c.dir, o.cfg.Progress); err != nil {
			c.cleanup()
			return nil, err
		}
	}
	// The admin token travels in argv (visible in ps); it is random per
	// run and the server listens on loopback only.
	token := rand.Text()
	args := []string{
		"--admin-token", token, "--capacity", fmt.Sprint(o.cfg.Capacity),
		"--metrics-addr", "127.0.0.1:0", "--shutdown-grace", "5s",
	}
	if o.cpuProfile != "" || o.traceOut != "" {
		args = append(args, "--pprof")
	}
	srv, err := serverproc.Start(ctx, serverproc.Options{
		Path: bin, Args: append(args, o.serverArgs...), SysProcAttr: dieWithParent(o.ownSession),
	})
	if err != nil {
		c.cleanup()
		return nil, err
	}
	c.srv = srv
	o.cfg.Addr, o.cfg.AdminToken, o.cfg.ServerPID, o.cfg.MetricsAddr = srv.Addr, token, srv.PID, srv.MetricsAddr
	fmt.Fprintf(o.cfg.Progress, "server pid %d serving on %s (metrics %s)\n", srv.PID, srv.Addr, srv.MetricsAddr)
	return c, nil
}

// fill adds what only the command knows to rep: that the server was its
// child, and how many ERROR lines it logged (their tail goes to log).
func (c *childServer) fill(rep *loadrun.Report, log io.Writer) {
	rep.Mode = "child"
	n := c.srv.ErrorLogs()
	rep.ServerErrorLogs = &n
	if n > 0 {
		fmt.Fprintf(log, "server log tail:\n%s\n", c.srv.Tail())
	}
}

// stop stops the server (SIGTERM, then SIGKILL after 15 s) and removes the
// binary built here.
func (c *childServer) stop(log io.Writer) {
	if err := c.srv.Stop(15 * time.Second); err != nil {
		fmt.Fprintln(log, "load: server exit:", err)
	}
	c.cleanup()
}

func (c *childServer) cleanup() {
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}
