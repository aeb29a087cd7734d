package loadrun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
)

// loadRun is the shared state of one load run.
type loadRun struct {
	cfg      Config
	capacity int
	start    time.Time
	runCtx   context.Context // ends after Duration: no new cycles
	hardCtx  context.Context // ends after Duration+Drain: calls are cut

	held        atomic.Int64 // leases the clients hold now
	maxHeld     atomic.Int64
	overClient  atomic.Int64 // times held exceeded capacity
	liveDone    atomic.Int64 // live counters for progress lines
	liveRefused atomic.Int64
	liveFailed  atomic.Int64
	failLines   atomic.Int64

	progressMu sync.Mutex
}

func (r *loadRun) logf(format string, args ...any) {
	if r.cfg.Progress == nil {
		return
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
}

// Run drives cfg.Clients clients against cfg.Addr for cfg.Duration and
// reports what they saw. An error means the run itself could not be made
// (bad config, unreachable server, bad admin token); failed cycles are in
// the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	// The clients' connections, and one more of the same kind for the
	// health Check floor probe; in a flood, one more for the GenerateCurve
	// probe.
	probeConns := 1
	if cfg.Flood != nil {
		probeConns = 2
	}
	conns, err := dialAll(ctx, cfg.Addr, cfg.Conns+probeConns, cfg.source)
	defer closeAll(conns)
	if err != nil {
		return nil, err
	}
	check := healthCheck(conns[cfg.Conns])
	_ = check(ctx) // the first call on a connection is not a sample either
	echo, err := newTCPEcho()
	if err != nil {
		return nil, err
	}
	defer echo.Close()

	r := &loadRun{cfg: cfg, capacity: cfg.Capacity}
	poller, err := r.startPoller(ctx)
	if err != nil {
		return nil, err
	}
	defer poller.close()
	var fl *flood
	var floodConns []*grpc.ClientConn
	if cfg.Flood != nil {
		floodConns, err = dialAll(ctx, cfg.Addr, cfg.Flood.Conns, func(int) net.IP { return floodSource })
		defer closeAll(floodConns)
		if err != nil {
			return nil, err
		}
		r.logf("GenerateCurve probe alone for %s (the idle baseline)", cfg.Flood.Idle)
		fl = idleBaseline(ctx, *cfg.Flood, conns[cfg.Conns+1], cfg.Seed)
	}

	before := takeUsage()
	hardCtx, hardCancel := context.WithTimeout(ctx, cfg.Duration+cfg.Drain)
	defer hardCancel()
	runCtx, runCancel := context.WithTimeout(hardCtx, cfg.Duration)
	defer runCancel()
	r.runCtx, r.hardCtx = runCtx, hardCtx

	probes := r.startSamplers(ctx, poller, check, echo)
	if fl != nil {
		fl.start(r, floodConns, conns[cfg.Conns+1])
	}
	stats, elapsed := r.runClients(conns[:cfg.Conns])
	var floodRep *FloodReport
	if fl != nil {
		floodRep = fl.finish()
	}
	probes.stop()

	rep := r.report(stats, elapsed)
	rep.Flood = floodRep
	probes.fill(rep)
	before.fill(rep)
	if cfg.AcquireLog != nil {
		writeAcquireLog(cfg.AcquireLog, stats)
	}
	if cfg.MetricsAddr != "" {
		if m, err := scrapeServer(ctx, cfg.MetricsAddr); err != nil {
			r.logf("load: reading server metrics: %v", err)
		} else {
			rep.ServerMetrics = m
		}
	}
	return rep, nil
}

// dialAll opens n connections to addr, connection i from source(i) (nil:
// the system's choice), and brings them all to READY before the clock
// starts: the first call on a new connection would otherwise pay for TCP
// and HTTP/2 set-up, which is not what the latencies are meant to measure.
// The connections opened are returned even with an error, to be closed.
func dialAll(ctx context.Context, addr string, n int, source func(int) net.IP) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, n)
	for i := range n {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if ip := source(i); ip != nil {
			opts = append(opts, grpc.WithContextDialer(dialFrom(ip)))
		}
		c, err := grpc.NewClient(addr, opts...)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
	}
	return conns, connectAll(ctx, conns, 30*time.Second)
}

// source is the source address of the clients' connection i: the
// well-behaved client's in a flood, one of its own with DistinctIPs, else
// the system's choice; always the system's for a server not on loopback.
func (c Config) source(i int) net.IP {
	switch {
	case !isLoopback(c.Addr):
		return nil
	case c.Flood != nil:
		return goodSource
	case c.DistinctIPs:
		return sourceIP(i)
	}
	return nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// runClients runs cfg.Clients clients on conns, round robin, until the run
// and its drain end, and returns what each saw and how long they ran.
func (r *loadRun) runClients(conns []*grpc.ClientConn) ([]*clientStats, time.Duration) {
	start := time.Now()
	r.start = start
	stats := make([]*clientStats, r.cfg.Clients)
	var clients sync.WaitGroup
	for i := range r.cfg.Clients {
		st := &clientStats{failures: map[string]int{}}
		stats[i] = st
		api := whirlv1.NewAnimationServiceClient(conns[i%len(conns)])
		rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)))
		clients.Go(func() { r.client(i, api, rng, st) })
	}
	clients.Wait()
	return stats, time.Since(start)
}

// samplers are what runs beside the clients: the ListLeases poller, the
// server's /proc sampler, progress lines, the wake-up probe and the two
// floor probes.
type samplers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	poller       *adminPoller
	procs        *procSampler
	wakeups      []time.Duration
	echo, health floorSamples
}

// startSamplers starts them. The floor probes run while new cycles start
// (runCtx), the others until stop, after the drain.
func (r *loadRun) startSamplers(ctx context.Context, poller *adminPoller, check func(context.Context) error, echo *tcpEcho) *samplers {
	sctx, cancel := context.WithCancel(ctx)
	s := &samplers{cancel: cancel, poller: poller}
	if poller != nil {
		s.wg.Go(func() { poller.run(sctx) })
	}
	if r.cfg.ServerPID != 0 {
		s.procs = newProcSampler(r.cfg.ServerPID)
		s.wg.Go(func() { s.procs.run(sctx, 200*time.Millisecond) })
	}
	if r.cfg.Progress != nil {
		s.wg.Go(func() { r.progressLoop(sctx) })
	}
	s.wg.Go(func() { s.wakeups = wakeupProbe(sctx, 2*time.Millisecond) })
	echoRNG := rand.New(rand.NewPCG(r.cfg.Seed, floorStream))
	healthRNG := rand.New(rand.NewPCG(r.cfg.Seed, floorStream+1))
	s.wg.Go(func() { s.echo = floorProbe(r.runCtx, echoRNG, echo.roundTrip) })
	s.wg.Go(func() { s.health = floorProbe(r.runCtx, healthRNG, check) })
	return s
}

// stop ends the samplers and waits for them.
func (s *samplers) stop() {
	s.cancel()
	s.wg.Wait()
}

// fill puts the samplers' figures into rep.
func (s *samplers) fill(rep *Report) {
	rep.WakeupDelay = latency(s.wakeups)
	rep.FloorTCPEcho, rep.FloorTCPEchoErrors = latency(s.echo.d), s.echo.errors
	rep.FloorHealthCheck, rep.FloorHealthCheckErrors = latency(s.health.d), s.health.errors
	if p := s.poller; p != nil {
		rep.Leases.Polls, rep.Leases.PollErrors = p.polls, p.errors
		rep.Leases.MaxListed, rep.Leases.PollOver = p.maxCount, p.over
		rep.Leases.LastPollError = p.lastErr
		if p.over > 0 {
			rep.OverAdmission = true
		}
	}
	if s.procs != nil {
		rep.Process = s.procs.finish()
	}
}

func (r *loadRun) progressLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.logf("%5.0fs  completed %d  refused %d  failed %d  held %d (max %d)",
			time.Since(start).Seconds(), r.liveDone.Load(), r.liveRefused.Load(), r.liveFailed.Load(),
			r.held.Load(), r.maxHeld.Load())
	}
}

// usage is the CPU and load counters at the start of the run, of this
// process and the machine.
type usage struct {
	cpu        float64
	delay      time.Duration
	busy       float64 // the machine's busy CPU seconds
	machineErr error
	loadAvg    float64
}

func takeUsage() usage {
	u := usage{cpu: selfCPU(), loadAvg: loadAvg()}
	u.delay, _ = runDelay(os.Getpid())
	u.busy, u.machineErr = machineBusy()
	return u
}

// fill puts what this process and the machine spent since u into rep;
// the server's part comes from rep.Process, filled before.
func (u usage) fill(rep *Report) {
	rep.LoadCPUSeconds = selfCPU() - u.cpu
	if d, err := runDelay(os.Getpid()); err == nil {
		rep.LoadRunQueueSeconds = (d - u.delay).Seconds()
	}
	busy, err := machineBusy()
	if err != nil || u.machineErr != nil {
		return
	}
	m := &MachineReport{
		BusyCPUSeconds: busy - u.busy,
		LoadAvgStart:   u.loadAvg,
		LoadAvgEnd:     loadAvg(),
	}
	m.OtherCPUSeconds = m.BusyCPUSeconds - rep.LoadCPUSeconds
	if rep.Process != nil {
		m.OtherCPUSeconds -= rep.Process.ServerCPUSeconds + rep.Process.ChildCPUSeconds
	}
	rep.Machine = m
}
