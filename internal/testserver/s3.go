package testserver

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// S3 is a real S3 server for tests: the Versity S3 gateway (versitygw)
// serving one bucket from a temporary directory on loopback.
type S3 struct {
	// URL opens the bucket with gocloud.dev/blob, objects under videos/.
	URL string
	// Dir is the directory holding the bucket's objects as files.
	Dir string
}

// s3Bucket is the bucket every S3 test server holds.
const s3Bucket = "whirl-test"

// StartS3 starts versitygw ($WHIRL_VERSITYGW, else on PATH, else in
// $(go env GOPATH)/bin) with one empty bucket and sets the AWS_* variables
// the SDK reads its credentials and region from, for the rest of the test.
// Without the binary the test is skipped, or fails when WHIRL_REQUIRE_S3
// is set (scripts/test.sh sets it and installs the binary).
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := versitygw()
	if bin == "" {
		msg := "versitygw not found: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0 (scripts/test.sh does)"
		if os.Getenv("WHIRL_REQUIRE_S3") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, s3Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	const access, secret = "whirl-test-access", "whirl-test-secret-key"
	cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr, "posix", root)
	// Its access log (a line per request) would drown the test's output.
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s: %v", addr, err)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", "us-east-1")
	return &S3{
		URL: fmt.Sprintf("s3://%s?endpoint=http://%s&region=us-east-1&use_path_style=true&prefix=videos/", s3Bucket, addr),
		Dir: filepath.Join(root, s3Bucket, "videos"),
	}
}

// UnreachableS3URL is an S3 bucket URL whose endpoint refuses every
// connection; the SDK is told not to retry, so each call fails at once.
func UnreachableS3URL(t testing.TB) string {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "nobody")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "nothing")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	return fmt.Sprintf("s3://%s?endpoint=http://%s&region=us-east-1&use_path_style=true", s3Bucket, FreeAddr(t))
}

func versitygw() string {
	if p := os.Getenv("WHIRL_VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := cmp.Or(os.Getenv("GOPATH"), filepath.Join(os.Getenv("HOME"), "go"))
	if p := filepath.Join(gopath, "bin", "versitygw"); fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
