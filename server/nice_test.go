package main_test

import (
	"os"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/encode"
)

// TestFFmpegNice checks the niceness of the spare ffmpeg the server starts at
// boot: --ffmpeg-nice is added to the server's own, 19 by default. The
// server inherits this process's niceness, so every figure is compared with
// that; the test holds under `nice -n 5 go test` too.
func TestFFmpegNice(t *testing.T) {
	self, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	own := self.Nice
	if own >= encode.MaxNice {
		// ffmpeg at this niceness plus any --ffmpeg-nice is at the floor
		// too: a flag that was never applied would look the same
		t.Skipf("the test runs at niceness %d already: ffmpeg cannot be seen to run lower", own)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"default", nil, min(own+encode.DefaultNice, encode.MaxNice)},
		{"zero", []string{"--ffmpeg-nice", "0"}, own},
		{"four", []string{"--ffmpeg-nice", "4"}, min(own+4, encode.MaxNice)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startServer(t, tc.args...)
			var ffmpegs []int
			for deadline := time.Now().Add(10 * time.Second); len(ffmpegs) == 0; ffmpegs = childrenOf(p.srv.PID) {
				if time.Now().After(deadline) {
					t.Fatalf("no spare ffmpeg started; logs:\n%s", p.logs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, pid := range ffmpegs {
				if st, err := procStat(pid); err != nil || st.Nice != tc.want {
					t.Errorf("ffmpeg %d runs at niceness %d (%v), want %d", pid, st.Nice, err, tc.want)
				}
			}
			if st, err := procStat(p.srv.PID); err != nil || st.Nice != own {
				t.Errorf("server runs at niceness %d (%v), want its parent's %d", st.Nice, err, own)
			}
		})
	}
}
