package main

import (
	"context"
	"io"
	"testing"
)

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-size", "63"}, {"-clients", "0"}, {"-duration", "0s"}, {"-admin-token", "x"},
		{"-capacity", "0"}, {"-nope"}, {"stray"},
		{"-flood", "5", "-flood-size", "32"}, {"-flood", "5", "-flood-idle", "0s"},
	} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
