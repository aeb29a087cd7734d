package nice_test

import (
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/whirl-dev/whirl/internal/nice"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// niceness is the calling thread's niceness.
func niceness(t *testing.T) int {
	t.Helper()
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	return 20 - raw
}

// TestRun: f runs at the process's niceness plus n (at most Max) and the
// caller's thread keeps its own; relative to the test's own niceness, so it
// holds under `nice -n 5 go test` too.
func TestRun(t *testing.T) {
	own := niceness(t)
	for _, n := range []int{0, 3, nice.Max} {
		var got int
		if err := nice.Run(n, func() error { got = niceness(t); return nil }); err != nil {
			t.Fatal(err)
		}
		if want := min(own+n, nice.Max); got != want {
			t.Errorf("Run(%d): f ran at niceness %d, want %d", n, got, want)
		}
		if after := niceness(t); after != own {
			t.Errorf("Run(%d): the caller's thread is at niceness %d after, was %d", n, after, own)
		}
	}
}
