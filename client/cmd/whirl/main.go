// Command whirl is the command-line client of the whirl rendering service.
//
//	whirl curve --seed 42
//	whirl still --seed 42 --style trace --size 720 -o curve.png
//	whirl render --seed 42 --style wheels --frames 300 -o curve.mp4
//	whirl lease acquire | lease renew ID | lease release ID
//	whirl leases            (admin: needs --token or WHIRL_TOKEN)
//	whirl revoke HANDLE     (admin)
//	whirl version           (also --version)
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

// runner runs a command once its flags are parsed; pos are its positional
// arguments.
type runner func(a *app, ctx context.Context, pos []string) error

// command is one thing whirl does. Its flags exist only in define, which the
// command line, `whirl help COMMAND` and the top-level usage all call: there
// is no second list of them to keep in step.
type command struct {
	// name is the word(s) after whirl: "render", "lease acquire".
	name string
	// args names the positional arguments ("ID"); the flags are listed from
	// the flag set.
	args string
	// nPos is the number of positional arguments wanted.
	nPos int
	// summary is the command's line in the command list; about, if set,
	// replaces it in the command's own help.
	summary, about string
	// define registers the command's own flags on fs and returns what runs
	// the command with them.
	define func(fs *flag.FlagSet) runner
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, tty bool) int {
	a := &app{stdout: stdout, stderr: stderr, tty: tty, g: newGlobals(getenv)}
	err := a.dispatch(ctx, args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code := exitCode(ctx, err)
	a.printError(err, code)
	return code
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"}
	}
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
			return a.dispatch(ctx, append(rest, "-h"))
		}
		a.usage(a.stdout)
		return nil
	}
	if group := subcommands(name); group != nil {
		return a.dispatchGroup(ctx, name, group, rest)
	}
	for _, c := range commands() {
		if c.name == name {
			return a.runCommand(ctx, c, rest)
		}
	}
	return usagef("unknown command %q; run 'whirl help'", name)
}

// dispatchGroup runs one of the commands named "group SUBCOMMAND".
func (a *app) dispatchGroup(ctx context.Context, group string, cmds []command, args []string) error {
	if len(args) == 0 {
		a.groupUsage(a.stderr, group, cmds)
		return &usageError{msg: group + ": missing subcommand", printed: true}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		a.groupUsage(a.stdout, group, cmds)
		return nil
	}
	var names []string
	for _, c := range cmds {
		if c.name == group+" "+args[0] {
			return a.runCommand(ctx, c, args[1:])
		}
		names = append(names, strings.TrimPrefix(c.name, group+" "))
	}
	return usagef("%s: unknown subcommand %q (want %s)", group, args[0], strings.Join(names, ", "))
}

// subcommands lists the commands named "group ...", or nil.
func subcommands(group string) []command {
	var out []command
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			out = append(out, c)
		}
	}
	return out
}

// runCommand parses c's flags (its own and the global ones) and runs it.
func (a *app) runCommand(ctx context.Context, c command, args []string) error {
	fs := flag.NewFlagSet("whirl "+c.name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	run := c.define(fs)
	fs.Usage = func() {
		about := c.about
		if about == "" {
			about = c.summary
		}
		fmt.Fprintf(fs.Output(), "Usage: whirl %s\n\n%s.\n\nFlags:\n", synopsis(c), about)
		fs.PrintDefaults()
	}
	a.g.register(fs)
	pos, err := a.parse(fs, args, c.nPos)
	if err != nil {
		return err
	}
	return run(a, ctx, pos)
}

// synopsis is c's name, its own flags as its flag set defines them, and its
// positional arguments.
func synopsis(c command) string {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.define(fs)
	parts := []string{c.name}
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		if value, _ := flag.UnquoteUsage(f); value != "" {
			parts = append(parts, "["+dash+f.Name+" "+value+"]")
		} else {
			parts = append(parts, "["+dash+f.Name+"]")
		}
	})
	if c.args != "" {
		parts = append(parts, c.args)
	}
	return strings.Join(parts, " ")
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, "Usage: whirl [global flags] COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n      whirl %s\n", c.name, c.summary, synopsis(c))
	}
	fmt.Fprintf(w, "  %-14s %s\n", "help [COMMAND]", "show this, or a command's flags")
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

Run 'whirl help COMMAND' for what a command's flags mean.
`)
}

// groupUsage lists the subcommands of group.
func (a *app) groupUsage(w io.Writer, group string, cmds []command) {
	fmt.Fprint(w, "Usage:\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "  whirl %s\n      %s\n", synopsis(c), c.summary)
	}
	fmt.Fprintf(w, "\nRun 'whirl %s SUBCOMMAND -h' for flags.\n", group)
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
	if a.g.insecure {
		opts = append(opts, client.WithInsecure())
	}
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
