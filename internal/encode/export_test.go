package encode

import (
	"context"
	"errors"
	"time"
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
	if len(s.ready) == 0 {
		return 0, errors.New("the spare was taken meanwhile")
	}
	return s.ready[0].PID(), nil
}

// ReadyPIDs waits until s holds n started ffmpeg processes and returns
// their pids.
func (s *Spare) ReadyPIDs(ctx context.Context, n int) ([]int, error) {
	for {
		s.mu.Lock()
		var pids []int
		for _, p := range s.ready {
			pids = append(pids, p.PID())
		}
		s.mu.Unlock()
		if len(pids) >= n {
			return pids, nil
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// Unlent is the number of processes s holds or is starting, not counting
// those it has lent.
func (s *Spare) Unlent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ready) + s.starting
}
