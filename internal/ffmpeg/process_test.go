package ffmpeg

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// hold is an ffmpeg that sits reading its stdin until it is closed.
var hold = Command{Args: []string{"-hide_banner", "-nostdin", "-loglevel", "error",
	"-f", "rawvideo", "-pix_fmt", "gray", "-video_size", "2x2", "-i", "pipe:0", "-f", "null", "-"}}

// TestEnvHasNoSecrets: the started ffmpeg's environment, as the kernel
// shows it in /proc/PID/environ, holds PATH and the locale but none of the
// server's secrets.
func TestEnvHasNoSecrets(t *testing.T) {
	secrets := map[string]string{
		"WHIRL_ADMIN_TOKEN":     "admin-token-d0n0tleak",
		"ETCDCTL_PASSWORD":      "etcd-password-d0n0tleak",
		"WHIRL_ETCD_PASSWORD":   "etcd-password-d0n0tleak",
		"AWS_SECRET_ACCESS_KEY": "aws-d0n0tleak",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("LC_ALL", "C.UTF-8")
	p, err := Start(hold)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Skip(err) // no /proc
	}
	proc, err := fs.Proc(p.PID())
	if err != nil {
		t.Fatal(err)
	}
	env, err := proc.Environ()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		if strings.Contains(kv, "d0n0tleak") {
			t.Errorf("ffmpeg's environment holds a secret: %s", kv)
		}
	}
	for _, want := range []string{"LC_ALL=C.UTF-8", "AV_LOG_FORCE_NOCOLOR=1"} {
		if !slices.Contains(env, want) {
			t.Errorf("ffmpeg's environment lacks %s: %q", want, env)
		}
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		t.Errorf("ffmpeg's environment lacks PATH: %q", env)
	}
}

func TestEnv(t *testing.T) {
	got := Env([]string{"PATH=/bin", "HOME=/root", "LANG=C", "LC_CTYPE=C", "WHIRL_ADMIN_TOKEN=x", "LD_PRELOAD=/evil.so", "LANGUAGE=en", "PATHX=1"})
	want := []string{"PATH=/bin", "LANG=C", "LC_CTYPE=C", "LANGUAGE=en", "AV_LOG_FORCE_NOCOLOR=1"}
	if !slices.Equal(got, want) {
		t.Errorf("Env = %q, want %q", got, want)
	}
}

// TestKillAfterExit: a Kill that comes once the child has exited, however
// close behind its reaping, never signals its process group, whose id the
// kernel may have handed to another process by then. Killing from
// onReaped puts the Kill right behind the reap; before, Wait set reaped
// only after cmd.Wait had returned, and such a Kill signalled.
func TestKillAfterExit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux waits for an exit without reaping (waitid WNOWAIT) here")
	}
	for _, kill := range []string{"right after the reap", "after Wait"} {
		t.Run(kill, func(t *testing.T) {
			p, err := Start(Command{Path: "true"})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			var mu sync.Mutex
			var signalled []int
			p.killGroup = func(pgid int) {
				mu.Lock()
				defer mu.Unlock()
				signalled = append(signalled, pgid)
			}
			if kill == "right after the reap" {
				p.onReaped = p.Kill
			}
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			p.Kill()
			mu.Lock()
			defer mu.Unlock()
			if len(signalled) > 0 {
				t.Errorf("Kill signalled process group %v after the child had exited", signalled)
			}
		})
	}
}

// TestKillReachesTheGroup: Kill before the exit reaches the child and what
// it started.
func TestKillReachesTheGroup(t *testing.T) {
	p, err := Start(Command{Path: "sh", Args: []string{"-c", "sleep 60 & echo $! ; wait"}})
	if err != nil {
		t.Fatal(err)
	}
	var line [32]byte
	n, err := p.Stdout().Read(line[:])
	if err != nil {
		t.Fatal(err)
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Skip(err)
	}
	var grandchild int
	if _, err := fmt.Sscan(strings.TrimSpace(string(line[:n])), &grandchild); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	// SIGKILL is delivered by the time kill(2) returns, but the dying
	// process may not have run to its end yet: wait for the end
	for deadline := time.Now().Add(10 * time.Second); ; {
		proc, err := fs.Proc(grandchild)
		if err != nil {
			return // gone
		}
		if st, err := proc.Stat(); err != nil || st.State == "Z" {
			return // gone, or dead and waiting for init to reap it
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child's own child %d outlived Kill", grandchild)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
