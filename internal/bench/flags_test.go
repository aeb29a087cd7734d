package main

import (
	"context"
	"io"
	"testing"
)

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--width", "63"}, {"--reps", "0"}, {"--matplotlib=maybe"}, {"stray"}} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
