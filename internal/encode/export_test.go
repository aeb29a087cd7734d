package encode

import (
	"context"
	"time"
)

// ReadyPID waits until s holds a started ffmpeg and returns its pid.
func (s *Spare) ReadyPID(ctx context.Context) (int, error) {
	pids, err := s.ReadyPIDs(ctx, 1)
	if err != nil {
		return 0, err
	}
	return pids[0], nil
}

// ReadyPIDs waits until s holds n started ffmpeg processes and returns
// their pids.
func (s *Spare) ReadyPIDs(ctx context.Context, n int) ([]int, error) {
	for {
		if pids, _ := s.procs.Idle(); len(pids) >= n {
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
	ready, starting := s.procs.Idle()
	return len(ready) + starting
}
