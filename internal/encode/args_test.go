package encode

import (
	"strings"
	"testing"
)

func TestArgsFragDuration(t *testing.T) {
	o, err := Options{Width: 64, Height: 64, FPS: 30}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	a := strings.Join(args(o), " ")
	if !strings.Contains(a, "-frag_duration 100000") || !strings.Contains(a, "-g 150") || !strings.Contains(a, "-threads 2") {
		t.Errorf("args: %s", a)
	}
	o.FragmentDuration = o.FragmentDuration * 100
	if a := strings.Join(args(o), " "); !strings.Contains(a, "-frag_duration 0") {
		t.Errorf("fragment longer than the GOP: %s", a)
	}
}
