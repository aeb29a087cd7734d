package main

import (
	"bytes"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/whirl-dev/whirl/client"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// TestUsageListsEveryFlag: the top-level usage names every flag each
// command's own help lists.
func TestUsageListsEveryFlag(t *testing.T) {
	top := whirl(t, nil, "help").ok(t).stdout
	globals := whirl(t, nil, "--help").stderr
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for _, c := range commands() {
		help := whirl(t, nil, append(strings.Fields(c.name), "-h")...)
		if help.code != exitOK {
			t.Fatalf("whirl %s -h: exit %d", c.name, help.code)
		}
		synopsis := regexp.MustCompile(`(?m)^      whirl ` + regexp.QuoteMeta(c.name) + `\b.*$`).FindString(top)
		if synopsis == "" {
			t.Errorf("top-level usage has no line for %q:\n%s", c.name, top)
			continue
		}
		for _, m := range flagLine.FindAllStringSubmatch(help.stderr, -1) {
			name := m[1]
			if strings.Contains(globals, "  -"+name+" ") || strings.Contains(globals, "  -"+name+"\n") {
				continue // a global flag, listed once
			}
			if !strings.Contains(synopsis, "-"+name+" ") && !strings.Contains(synopsis, "-"+name+"]") {
				t.Errorf("%s takes -%s, but the top-level usage line does not list it: %s", c.name, name, synopsis)
			}
		}
	}
	for _, cmd := range []string{"curve", "still", "render"} {
		if !regexp.MustCompile(`(?m)^      whirl ` + cmd + ` .*\[--shape shapes\]`).MatchString(top) {
			t.Errorf("the usage of %s does not list --shape", cmd)
		}
	}
}

// TestLeaseLeftBehind: a lease the render could not release is named by its
// handle with the reason, never by its secret id; one kept on request is
// printed by id, as --keep-lease promises.
func TestLeaseLeftBehind(t *testing.T) {
	lease := &client.Lease{ID: "0123456789abcdef0123456789abcdef", Handle: "1f2e3d4c5b6a7980", ExpireTime: time.Now().Add(time.Minute)}
	cause := errors.New("whirl: release lease: Unavailable: server shutting down")
	tests := []struct {
		name      string
		flags     renderFlags
		res       client.Result
		want, not string
	}{
		{"release failed", renderFlags{}, client.Result{Lease: lease, ReleaseErr: cause}, "lease 1f2e3d4c5b6a7980 not released (" + cause.Error() + ")", lease.ID},
		{"kept", renderFlags{keep: true}, client.Result{Lease: lease}, "lease kept (--keep-lease): " + lease.ID, "not released"},
		{"released", renderFlags{}, client.Result{Lease: lease, Released: true}, "", "lease"},
		{"caller's lease", renderFlags{leaseID: lease.ID}, client.Result{Lease: lease}, "", "lease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			printLeaseLeft(&out, &tt.flags, &tt.res)
			if !strings.Contains(out.String(), tt.want) || strings.Contains(out.String(), tt.not) {
				t.Errorf("printed %q; want %q and not %q", out.String(), tt.want, tt.not)
			}
		})
	}
}

// TestTokenNotSentInPlaintext: with --token, an admin command to a
// plaintext server that is not on a loopback address is refused before the
// token is sent, and names --insecure; with --insecure it goes out.
func TestTokenNotSentInPlaintext(t *testing.T) {
	remote := testserver.NonLoopbackIP(t)
	lis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer() // no services: a call that reaches it is UNIMPLEMENTED
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	defer func() { s.Stop(); <-done }()
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	addr := net.JoinHostPort(remote, port)

	r := whirl(t, admin(), "--server", addr, "leases")
	if r.code != exitRefused || !strings.Contains(r.stderr, "admin token not sent") || !strings.Contains(r.stderr, "--insecure") {
		t.Errorf("plaintext to %s: exit %d, %q", addr, r.code, r.stderr)
	}
	r = whirl(t, admin(), "--server", addr, "--insecure", "leases")
	if !strings.Contains(r.stderr, "Unimplemented") {
		t.Errorf("with --insecure: exit %d, %q; want the call to reach the server", r.code, r.stderr)
	}
}

// TestVersion: `whirl version` and `whirl --version` print the build.
func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^whirl \S+\nrevision: \S+ \(\S+\)\ngo: go\S+ \S+/\S+\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if out := whirl(t, nil, args...).ok(t).stdout; !want.MatchString(out) {
			t.Errorf("whirl %s: %q", args[0], out)
		}
	}
}

// TestHelpNeverShowsTheToken: a token in WHIRL_TOKEN is the --token flag's
// value, and no help output prints it.
func TestHelpNeverShowsTheToken(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	env := []string{"WHIRL_TOKEN=" + secret}
	for _, args := range [][]string{{"help"}, {"--help"}, {"leases", "-h"}, {"revoke", "-h"}} {
		r := whirl(t, env, args...)
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("whirl %s printed the admin token", strings.Join(args, " "))
		}
	}
}
