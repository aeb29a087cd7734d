package main_test

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/whirl-dev/whirl/internal/testserver"
	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// TestVersion: --version prints the build and the ffmpeg found (or why
// renders would be refused), and exits 0 without serving.
func TestVersion(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		ffmpeg *regexp.Regexp
	}{
		{"ffmpeg found", nil, regexp.MustCompile(`(?m)^ffmpeg: \d+\.\d+\S*$`)},
		{"ffmpeg missing", []string{"--ffmpeg", "/nonexistent/ffmpeg"}, regexp.MustCompile(`(?m)^ffmpeg: not usable, renders would be refused: .*ffmpeg`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(bins.server, append(tt.args, "--version")...).Output()
			if err != nil {
				t.Fatalf("--version: %v", err)
			}
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`(?m)^whirl-server \S+$`),
				regexp.MustCompile(`(?m)^revision: \S+ \(\S+\)$`),
				regexp.MustCompile(`(?m)^go: ` + regexp.QuoteMeta(runtime.Version()) + `$`),
				tt.ffmpeg,
			} {
				if !want.Match(out) {
					t.Errorf("--version output lacks %s:\n%s", want, out)
				}
			}
		})
	}
}

// TestBuildInfoMetric: /metrics has whirl_build_info with the build's labels.
func TestBuildInfoMetric(t *testing.T) {
	metricsAddr := testserver.FreeAddr(t)
	startServer(t, "--metrics-addr", metricsAddr)
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := regexp.MustCompile(`(?m)^whirl_build_info\{ffmpeg="\d+\.\d+[^"]*",goversion="` + regexp.QuoteMeta(runtime.Version()) + `",revision="[^"]+",version="[^"]+"\} 1$`)
	if !want.Match(body) {
		t.Errorf("no whirl_build_info line like %s", want)
	}
}

// TestAdminTokenFileReload: the admin token comes from --admin-token-file;
// after the file changes, SIGHUP makes the new token the only one accepted;
// a reload that fails (an empty file) keeps the token there was.
func TestAdminTokenFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin-token")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first-token\n")
	p := startServer(t, "--admin-token-file", path)
	admin := whirlv1.NewLeaseAdminServiceClient(dial(t, p.addr))
	list := func(token string) error {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
		_, err := admin.ListLeases(ctx, &whirlv1.ListLeasesRequest{})
		return err
	}
	if err := list("first-token"); err != nil {
		t.Fatalf("token from the file: %v", err)
	}
	write("second-token\n")
	if err := p.srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); list("second-token") != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("second token never accepted after SIGHUP; logs:\n%s", p.logs)
		}
	}
	if err := list("first-token"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("first token after the reload: %v, want Unauthenticated", err)
	}
	write("")
	if err := p.srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.logs.String(), "admin token not reloaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the empty file was not reported; logs:\n%s", p.logs)
		}
	}
	if err := list("second-token"); err != nil {
		t.Errorf("token after a failed reload: %v, want the previous one kept", err)
	}
}

// TestHangupWithoutTokenFile: a SIGHUP to a server without a token file is
// logged and ignored; the server goes on serving.
func TestHangupWithoutTokenFile(t *testing.T) {
	p := startServer(t)
	if err := p.srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.logs.String(), "SIGHUP ignored"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP not reported; logs:\n%s", p.logs)
		}
	}
	api := whirlv1.NewAnimationServiceClient(dial(t, p.addr))
	if _, err := api.GenerateCurve(t.Context(), &whirlv1.GenerateCurveRequest{Seed: 1}); err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
}
