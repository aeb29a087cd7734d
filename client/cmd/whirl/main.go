// Command whirl is the command-line client of the whirl rendering service.
//
//	whirl curve --seed 42
//	whirl still --seed 42 --style trace --size 720 -o curve.png
//	whirl render --seed 42 --style wheels --frames 300 -o curve.mp4
//	whirl lease acquire | lease renew ID | lease release ID
//	whirl leases            (admin: needs --token or WHIRL_TOKEN)
//	whirl revoke HANDLE     (admin)
//
// Run `whirl help` for the flags. Exit codes: 0 success, 1 failure
// (including an unreachable server), 2 usage error, 3 refused by the server
// (RESOURCE_EXHAUSTED, PERMISSION_DENIED, UNAUTHENTICATED, NOT_FOUND,
// FAILED_PRECONDITION, INVALID_ARGUMENT), 130 interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/client"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitRefused     = 3
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// app is one invocation of the CLI.
type app struct {
	stdout, stderr io.Writer
	// tty is whether stderr is a terminal: progress is drawn only then.
	tty bool
	g   *globals
}

type command struct {
	name, args, summary string
	run                 func(a *app, ctx context.Context, name string, args []string) error
}

func commands() []command {
	return []command{
		{"curve", "[--seed N] [curve flags]", "print a curve's summary and wheel parameters", (*app).curve},
		{"still", "[--seed N] [--style wheels|trace] [--size 720] [--frame N] -o FILE.png", "render a PNG still", (*app).still},
		{"render", "[--seed N] [--style wheels|trace] [--frames 300] [--fps 30] [--size 720] -o FILE.mp4", "render an MP4 animation", (*app).render},
		{"lease", "acquire|renew|release ...", "acquire, renew or release a lease", (*app).lease},
		{"leases", "", "list the server's leases (admin: --token)", (*app).leases},
		{"revoke", "HANDLE", "revoke a lease by its handle (admin: --token)", (*app).revoke},
		{"help", "[COMMAND]", "show help", nil},
	}
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, tty bool) int {
	a := &app{stdout: stdout, stderr: stderr, tty: tty, g: newGlobals(getenv)}
	err := a.dispatch(ctx, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	a.printError(err, code)
	return code
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("whirl", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	a.g.register(fs)
	fs.Usage = func() { a.usage(a.stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error(), printed: true}
	}
	if fs.NArg() == 0 {
		a.usage(a.stderr)
		return &usageError{msg: "no command given", printed: true}
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		if len(rest) > 0 {
			return a.dispatch(ctx, []string{rest[0], "-h"})
		}
		a.usage(a.stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == name && c.run != nil {
			return c.run(a, ctx, name, rest)
		}
	}
	return usagef("unknown command %q; run 'whirl help'", name)
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, "Usage: whirl [global flags] COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nGlobal flags (accepted before or after the command):\n")
	fs := flag.NewFlagSet("whirl", flag.ContinueOnError)
	a.g.register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Exit codes: 0 success; 1 failure (unreachable server, broken video, ...);
2 usage error; 3 refused by the server (RESOURCE_EXHAUSTED, PERMISSION_DENIED,
UNAUTHENTICATED, NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT);
130 interrupted.

Run 'whirl help COMMAND' for a command's flags.
`)
}

// newFlagSet makes a command's flag set, with the global flags on it.
func (a *app) newFlagSet(name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("whirl "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: whirl %s %s\n\n%s.\n\nFlags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	a.g.register(fs)
	return fs
}

// parse parses a command's arguments, wanting exactly nPos positional ones
// (-1: any number).
func (a *app) parse(fs *flag.FlagSet, args []string, nPos int) ([]string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{msg: err.Error(), printed: true}
	}
	if nPos >= 0 && len(pos) != nPos {
		if len(pos) > nPos {
			return nil, usagef("%s: unexpected argument %q", fs.Name(), pos[nPos])
		}
		return nil, usagef("%s: missing argument; run '%s -h'", fs.Name(), fs.Name())
	}
	return pos, nil
}

// dial connects with the global flags.
func (a *app) dial(ctx context.Context, extra ...client.Option) (*client.Client, error) {
	opts := []client.Option{client.WithTimeout(a.g.timeout), client.WithToken(a.g.token)}
	if a.g.tls || a.g.caFile != "" || a.g.serverName != "" {
		opts = append(opts, client.WithTLS(nil))
		if a.g.caFile != "" {
			opts = append(opts, client.WithCAFile(a.g.caFile))
		}
		if a.g.serverName != "" {
			opts = append(opts, client.WithServerName(a.g.serverName))
		}
	}
	return client.Dial(ctx, a.g.server, append(opts, extra...)...)
}

// refused reports whether code means the server said no: exit 3.
func refused(code codes.Code) bool {
	switch code {
	case codes.ResourceExhausted, codes.PermissionDenied, codes.Unauthenticated,
		codes.NotFound, codes.FailedPrecondition, codes.InvalidArgument:
		return true
	}
	return false
}

func exitCode(ctx context.Context, err error) int {
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, client.ErrUnreachable):
		return exitFailure
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	if _, ok := status.FromError(err); ok && refused(status.Code(err)) {
		return exitRefused
	}
	return exitFailure
}

func (a *app) printError(err error, code int) {
	var ue *usageError
	if errors.As(err, &ue) {
		if !ue.printed {
			fmt.Fprintf(a.stderr, "whirl: %s\n", ue.msg)
		}
		return
	}
	if code == exitInterrupted {
		fmt.Fprintln(a.stderr, "whirl: interrupted")
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "whirl: ") {
		msg = "whirl: " + msg
	}
	fmt.Fprintln(a.stderr, msg)
	if v := client.FieldViolations(err); len(v) > 1 {
		for _, line := range v {
			fmt.Fprintln(a.stderr, "  "+line)
		}
	}
	if status.Code(err) == codes.Unauthenticated && a.g.token == "" {
		fmt.Fprintln(a.stderr, "whirl: admin commands need the server's admin token: pass --token or set WHIRL_TOKEN")
	}
	if errors.Is(err, client.ErrExhausted) {
		fmt.Fprintln(a.stderr, "whirl: every lease is in use; try again later, or pass --wait to queue for one")
	}
}
