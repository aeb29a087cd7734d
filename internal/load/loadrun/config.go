package loadrun

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Config is one load run against a server that is already listening.
type Config struct {
	// Addr is the server's host:port.
	Addr string
	// Clients is the number of concurrent callers, each looping acquire →
	// render → release.
	Clients int
	// Conns is the number of gRPC connections the clients share, round
	// robin; 0 gives every client its own connection, as separate callers
	// would have.
	Conns int
	// DistinctIPs, for a loopback target, gives every connection its own
	// source address (127.1.x.y), so that the server's per-IP limits see the
	// clients as the separate callers they stand for rather than one.
	DistinctIPs bool
	// NoRender skips the render: cycles are acquire → release only, which
	// isolates the admission path.
	NoRender bool
	// Hold, with NoRender, is how long each lease is held before release,
	// standing in for a render's length without its CPU.
	Hold time.Duration
	// Duration is how long new cycles are started. A cycle that holds a
	// lease when it ends runs to completion, for at most Drain more.
	Duration time.Duration
	Drain    time.Duration
	// Ramp spreads the clients' first calls evenly over this long, so that
	// the run does not open with every client calling at the same instant.
	Ramp time.Duration
	// Capacity is the server's lease capacity, for the client-side
	// over-admission check. 0 = learn it from ListLeases (needs AdminToken).
	Capacity int
	// AdminToken, if set, makes the run poll LeaseAdminService/ListLeases
	// every PollEvery and check the server's own lease count.
	AdminToken string
	PollEvery  time.Duration
	// Video of every render; curve seeds are random.
	Width, Height, Frames, FPS int
	// MaxBackoff caps the wait after a refusal; see loadRun.backoff.
	MaxBackoff time.Duration
	// AcquireTimeout and RenderTimeout bound single calls.
	AcquireTimeout time.Duration
	RenderTimeout  time.Duration
	// Seed seeds the load generator's random choices (0 = random).
	Seed uint64
	// ServerPID, if not 0, is sampled for RSS and CPU (Linux /proc).
	ServerPID int
	// Progress, if not nil, receives a status line every ProgressEvery and a
	// line per failure (the first few).
	Progress      io.Writer
	ProgressEvery time.Duration
	// AcquireLog, if not nil, receives every AcquireLease call as CSV.
	AcquireLog io.Writer
	// Flood, if not nil, makes the run an abuse test (see Flood): the
	// clients then all dial from one address, the well-behaved client's.
	Flood *Flood
	// MetricsAddr, if set, is the server's metrics listener (host:port):
	// the report then carries the server's own account of the run.
	MetricsAddr string
}

func (c *Config) setDefaults() error {
	if c.Clients < 1 {
		return fmt.Errorf("clients must be at least 1, got %d", c.Clients)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("duration must be positive, got %s", c.Duration)
	}
	if c.Capacity == 0 && c.AdminToken == "" {
		return errors.New("capacity unknown: give the capacity or an admin token")
	}
	if c.Width == 0 {
		c.Width = 320
	}
	if c.Height == 0 {
		c.Height = c.Width
	}
	if c.Frames == 0 {
		c.Frames = 60
	}
	if c.FPS == 0 {
		c.FPS = 30
	}
	if c.Drain == 0 {
		c.Drain = 30 * time.Second
	}
	if c.PollEvery == 0 {
		c.PollEvery = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 2 * time.Second
	}
	if c.AcquireTimeout == 0 {
		c.AcquireTimeout = 10 * time.Second
	}
	if c.RenderTimeout == 0 {
		c.RenderTimeout = 2 * time.Minute
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 10 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Flood != nil {
		switch {
		case !isLoopback(c.Addr):
			return errors.New("a flood needs a loopback server: its clients are told apart by source address")
		case c.Flood.Calls < 1 || c.Flood.Size < 1 || c.Flood.Idle <= 0:
			return errors.New("a flood needs calls >= 1, a size and an idle baseline > 0")
		}
		c.Flood.Conns = min(max(c.Flood.Conns, 1), c.Flood.Calls)
		c.DistinctIPs = false // the clients are one: the well-behaved client
	}
	if c.Conns <= 0 || c.Conns > c.Clients {
		c.Conns = c.Clients
	}
	return nil
}
