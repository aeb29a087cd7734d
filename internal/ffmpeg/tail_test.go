package ffmpeg

import (
	"fmt"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	tl := newTail(10)
	fmt.Fprint(tl, "hello ")
	if tl.String() != "hello" {
		t.Errorf("%q", tl.String())
	}
	fmt.Fprint(tl, "world, again")
	if tl.String() != "…rld, again" {
		t.Errorf("%q", tl.String())
	}
	fmt.Fprint(tl, strings.Repeat("x", 30)+"END")
	if tl.String() != "…xxxxxxxEND" {
		t.Errorf("%q", tl.String())
	}
}
