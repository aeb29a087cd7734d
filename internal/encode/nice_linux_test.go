package encode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/whirl-dev/whirl/internal/encode"
	"github.com/whirl-dev/whirl/internal/fmp4"
)

// threadNiceness returns the niceness of every thread of process pid
// ("self" for this one), by thread id, from /proc.
func threadNiceness(t *testing.T, pid string) map[string]int {
	t.Helper()
	n := os.Getpid()
	if pid != "self" {
		var err error
		if n, err = strconv.Atoi(pid); err != nil {
			t.Fatal(err)
		}
	}
	threads, err := procfs.AllThreads(n)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int, len(threads))
	for _, th := range threads {
		st, err := th.Stat()
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strconv.Itoa(th.PID)] = st.Nice
	}
	return out
}

// TestNice: ffmpeg runs Options.Nice lower than this process, from its
// first thread to its last, the bytes do not change, and this process's own
// threads keep their niceness. Everything is compared with the niceness the
// test itself runs at, so it holds under `nice -n 5 go test` too.
func TestNice(t *testing.T) {
	base := threadNiceness(t, "self")
	var own int
	for _, n := range base {
		own = n // every thread of the test binary has the same niceness
	}
	if own >= encode.MaxNice {
		// ffmpeg at this niceness plus any Nice is at the floor too: a Nice
		// that was never applied would look the same
		t.Skipf("the test runs at niceness %d already: ffmpeg cannot be seen to run lower", own)
	}
	const w, h = 160, 160
	fs := frames(t, w, h, 20)
	var reference []byte
	for _, nice := range []int{0, 5, 19} {
		t.Run(strconv.Itoa(nice), func(t *testing.T) {
			var data []byte
			e, err := encode.Start(context.Background(), encode.Options{Width: w, Height: h, FPS: 30, Nice: nice},
				func(s fmp4.Segment) error { data = append(data, s.Data...); return nil })
			if err != nil {
				t.Fatal(err)
			}
			// the first frames make ffmpeg start libx264 and its threads
			for _, f := range fs[:5] {
				if err := e.WriteFrame(f); err != nil {
					t.Fatal(err)
				}
			}
			want := min(own+nice, encode.MaxNice)
			child := threadNiceness(t, strconv.Itoa(e.PID()))
			for tid, n := range child {
				if n != want {
					t.Errorf("ffmpeg thread %s has niceness %d, want %d (this process: %d, Nice %d)", tid, n, want, own, nice)
				}
			}
			for _, f := range fs[5:] {
				if err := e.WriteFrame(f); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if len(child) < 2 {
				t.Errorf("ffmpeg ran %d threads; expected its encoder threads too", len(child))
			}
			// the niceness never changes the bytes
			if reference == nil {
				reference = data
			} else if !bytes.Equal(data, reference) {
				t.Errorf("nice %d changed the output: %d bytes, %d at nice 0", nice, len(data), len(reference))
			}
			// the thread lowered to start ffmpeg ends with the goroutine
			// that started it: the server's own threads keep their priority
			waitFor(t, 10*time.Second, "the thread lowered to start ffmpeg to end", func() string {
				var lowered []string
				for tid, n := range threadNiceness(t, "self") {
					if n != own {
						lowered = append(lowered, tid+"="+strconv.Itoa(n))
					}
				}
				if len(lowered) > 0 {
					return fmt.Sprintf("threads of this process (pid %d) at another niceness than %d: %v", os.Getpid(), own, lowered)
				}
				return ""
			})
		})
	}
}
