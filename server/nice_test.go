package main_test

import (
	"os"
	"testing"
	"time"

	"github.com/whirl-dev/whirl/internal/procfs"
)

// TestFFmpegNice checks the niceness of the spare ffmpeg the server starts at
// boot: --ffmpeg-nice is added to the server's own, 19 by default.
func TestFFmpegNice(t *testing.T) {
	self, err := procfs.ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	own := self.Nice
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"default", nil, min(own+19, 19)},
		{"zero", []string{"--ffmpeg-nice", "0"}, own},
		{"four", []string{"--ffmpeg-nice", "4"}, min(own+4, 19)},
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
				if st, err := procfs.ReadStat(pid); err != nil || st.Nice != tc.want {
					t.Errorf("ffmpeg %d runs at niceness %d (%v), want %d", pid, st.Nice, err, tc.want)
				}
			}
			if st, err := procfs.ReadStat(p.srv.PID); err != nil || st.Nice != own {
				t.Errorf("server runs at niceness %d (%v), want its parent's %d", st.Nice, err, own)
			}
		})
	}
}
