package main_test

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestFFmpegNice checks the niceness of the spare ffmpeg the server starts at
// boot: --ffmpeg-nice is added to the server's own, 19 by default.
func TestFFmpegNice(t *testing.T) {
	// field 19 of /proc/pid/stat; procStat starts at field 3
	const niceField = 19 - 3
	own, err := strconv.Atoi(procStat(os.Getpid())[niceField])
	if err != nil {
		t.Fatal(err)
	}
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
			for deadline := time.Now().Add(10 * time.Second); len(ffmpegs) == 0; ffmpegs = childrenOf(p.cmd.Process.Pid) {
				if time.Now().After(deadline) {
					t.Fatalf("no spare ffmpeg started; logs:\n%s", p.logs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, pid := range ffmpegs {
				if got := procStat(pid)[niceField]; got != strconv.Itoa(tc.want) {
					t.Errorf("ffmpeg %d runs at niceness %s, want %d", pid, got, tc.want)
				}
			}
			if got := procStat(p.cmd.Process.Pid)[niceField]; got != strconv.Itoa(own) {
				t.Errorf("server runs at niceness %s, want its parent's %d", got, own)
			}
		})
	}
}
