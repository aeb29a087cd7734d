package service

import (
	"context"
	"testing"
)

// HoldStillSlot takes one of s's still slots until the test ends or release
// is called, so that stills sent meanwhile queue behind it.
func HoldStillSlot(t testing.TB, s *Server) (release func()) {
	t.Helper()
	release, err := s.animation.stills.Acquire(context.Background(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return release
}

// StillStats reports stills drawing and waiting for a slot.
func StillStats(s *Server) (running, waiting int) { return s.animation.stills.Stats() }
