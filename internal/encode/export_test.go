package encode

import (
	"context"
	"errors"
)

// ReadyPID waits until s holds a started ffmpeg and returns its pid.
func (s *Spare) ReadyPID(ctx context.Context) (int, error) {
	s.mu.Lock()
	filled := s.filled
	s.mu.Unlock()
	select {
	case <-filled:
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready == nil {
		return 0, errors.New("the spare was taken meanwhile")
	}
	return s.ready.PID(), nil
}
