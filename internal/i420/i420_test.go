package i420_test

import (
	"testing"

	"github.com/whirl-dev/whirl/internal/i420"
)

func TestSize(t *testing.T) {
	for _, tc := range []struct{ w, h, want int }{
		{2, 2, 6},
		{4, 2, 12},
		{720, 720, 777600},
		{320, 180, 86400},
	} {
		if got := i420.Size(tc.w, tc.h); got != tc.want {
			t.Errorf("Size(%d, %d) = %d, want %d", tc.w, tc.h, got, tc.want)
		}
	}
}
