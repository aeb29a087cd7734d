package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	whirlv1 "github.com/whirl-dev/whirl/proto/whirl/v1"
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
	if c.Conns <= 0 || c.Conns > c.Clients {
		c.Conns = c.Clients
	}
	return nil
}

// Failure kinds, the keys of Report.Failures.
const (
	failAcquire     = "acquire_status"    // AcquireLease failed other than RESOURCE_EXHAUSTED
	failRenderStart = "render_start"      // RenderAnimation could not be opened
	failStatus      = "render_status"     // the stream ended with an error status
	failNoTrailer   = "no_trailer"        // the stream ended cleanly without a trailer
	failOrder       = "event_order"       // header/chunk/trailer out of order
	failOffset      = "offset_gap"        // a chunk did not start where the last ended
	failChunkSize   = "chunk_size"        // empty chunk or over 64 KiB
	failSHA         = "sha256_mismatch"   // trailer checksum differs from the bytes
	failTotal       = "total_mismatch"    // trailer length or frames differ
	failHeader      = "header_mismatch"   // header does not describe the request
	failNoFragment  = "no_media_fragment" // no segment_end after the init segment
	failRelease     = "release_status"    // ReleaseLease failed
	failAfter       = "after_trailer"     // something other than EOF followed the trailer
)

// cycleError is a failed cycle: kind is one of the fail* constants.
type cycleError struct {
	kind string
	msg  string
}

func (e *cycleError) Error() string { return e.kind + ": " + e.msg }

func fail(kind, format string, args ...any) *cycleError {
	return &cycleError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// clientStats is what one client saw; merged at the end, so no locking.
type clientStats struct {
	acquires      []acquireSample
	firstFragment []time.Duration
	renderTotal   []time.Duration
	completed     int
	refusedLease  int
	refusedOther  int
	failed        int
	aborted       int
	bytes         int64
	maxQueue      int
	otherExample  string // one RESOURCE_EXHAUSTED that was not a full pool
	retryHints    []time.Duration
	failures      map[string]int
}

// acquireSample is one AcquireLease call.
type acquireSample struct {
	at      time.Duration // call start, from the start of the run
	d       time.Duration
	client  int
	outcome string // granted, refused, other (a rate limit?) or error
}

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
	// health Check floor probe.
	conns := make([]*grpc.ClientConn, cfg.Conns+1)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	distinct := cfg.DistinctIPs && isLoopback(cfg.Addr)
	for i := range conns {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if distinct {
			opts = append(opts, grpc.WithContextDialer(dialFrom(sourceIP(i))))
		}
		c, err := grpc.NewClient(cfg.Addr, opts...)
		if err != nil {
			return nil, err
		}
		conns[i] = c
	}
	// Connect before the clock starts: the first call on a new connection
	// would otherwise pay for TCP and HTTP/2 set-up, which is not what the
	// AcquireLease latency is meant to measure.
	if err := connectAll(ctx, conns, 30*time.Second); err != nil {
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
	var poller *adminPoller
	if cfg.AdminToken != "" {
		adminConn, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		defer adminConn.Close()
		poller = &adminPoller{api: whirlv1.NewLeaseAdminServiceClient(adminConn), token: cfg.AdminToken, every: cfg.PollEvery}
		// One poll up front: checks the token and learns the capacity.
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := poller.list(pctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ListLeases: %w", err)
		}
		if int(resp.GetCapacity()) != cfg.Capacity && cfg.Capacity != 0 {
			r.logf("note: server reports capacity %d, not %d; using the server's", resp.GetCapacity(), cfg.Capacity)
		}
		r.capacity = int(resp.GetCapacity())
		if resp.GetCount() > 0 {
			r.logf("note: %d leases already live before the run", resp.GetCount())
		}
	}

	var procs *procSampler
	if cfg.ServerPID != 0 {
		procs = newProcSampler(cfg.ServerPID)
	}
	cpu0 := selfCPU()
	delay0, _ := runDelay(os.Getpid())
	machine0, machineErr := readMachineCPU()
	load0 := loadAvg()

	hardCtx, hardCancel := context.WithTimeout(ctx, cfg.Duration+cfg.Drain)
	defer hardCancel()
	runCtx, runCancel := context.WithTimeout(hardCtx, cfg.Duration)
	defer runCancel()
	r.runCtx, r.hardCtx = runCtx, hardCtx

	// Samplers run until the last client is done, drain included.
	samplersCtx, stopSamplers := context.WithCancel(ctx)
	var samplers sync.WaitGroup
	if poller != nil {
		samplers.Go(func() { poller.run(samplersCtx) })
	}
	if procs != nil {
		samplers.Go(func() { procs.run(samplersCtx, 200*time.Millisecond) })
	}
	if cfg.Progress != nil {
		samplers.Go(func() { r.progressLoop(samplersCtx) })
	}
	var wakeups []time.Duration
	samplers.Go(func() { wakeups = wakeupProbe(samplersCtx, 2*time.Millisecond) })
	// The floor probes run while new cycles start, not in the drain.
	var echoFloor, healthFloor floorSamples
	echoRNG := rand.New(rand.NewPCG(cfg.Seed, floorStream))
	healthRNG := rand.New(rand.NewPCG(cfg.Seed, floorStream+1))
	samplers.Go(func() { echoFloor = floorProbe(runCtx, echoRNG, echo.roundTrip) })
	samplers.Go(func() { healthFloor = floorProbe(runCtx, healthRNG, check) })

	start := time.Now()
	r.start = start
	stats := make([]*clientStats, cfg.Clients)
	var clients sync.WaitGroup
	for i := range cfg.Clients {
		st := &clientStats{failures: map[string]int{}}
		stats[i] = st
		api := whirlv1.NewAnimationServiceClient(conns[i%cfg.Conns])
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		clients.Go(func() { r.client(i, api, rng, st) })
	}
	clients.Wait()
	elapsed := time.Since(start)
	stopSamplers()
	samplers.Wait()

	rep := r.report(stats, elapsed)
	rep.WakeupDelay = latency(wakeups)
	rep.FloorTCPEcho, rep.FloorTCPEchoErrors = latency(echoFloor.d), echoFloor.errors
	rep.FloorHealthCheck, rep.FloorHealthCheckErrors = latency(healthFloor.d), healthFloor.errors
	if cfg.AcquireLog != nil {
		writeAcquireLog(cfg.AcquireLog, stats)
	}
	rep.LoadCPUSeconds = selfCPU() - cpu0
	if d, err := runDelay(os.Getpid()); err == nil {
		rep.LoadRunQueueSeconds = (d - delay0).Seconds()
	}
	if machine1, err := readMachineCPU(); err == nil && machineErr == nil {
		rep.Machine = &MachineReport{
			BusyCPUSeconds: float64(machine1.busy-machine0.busy) / userHZ,
			LoadAvgStart:   load0,
			LoadAvgEnd:     loadAvg(),
		}
	}
	if poller != nil {
		rep.Leases.Polls, rep.Leases.PollErrors = poller.polls, poller.errors
		rep.Leases.MaxListed, rep.Leases.PollOver = poller.maxCount, poller.over
		rep.Leases.LastPollError = poller.lastErr
		if poller.over > 0 {
			rep.OverAdmission = true
		}
	}
	if procs != nil {
		rep.Process = procs.finish()
	}
	if m := rep.Machine; m != nil {
		m.OtherCPUSeconds = m.BusyCPUSeconds - rep.LoadCPUSeconds
		if rep.Process != nil {
			m.OtherCPUSeconds -= rep.Process.ServerCPUSeconds + rep.Process.ChildCPUSeconds
		}
	}
	return rep, nil
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

// client loops acquire → render → release until the run ends.
func (r *loadRun) client(id int, api whirlv1.AnimationServiceClient, rng *rand.Rand, st *clientStats) {
	holder := fmt.Sprintf("load-%d", id)
	if r.cfg.Ramp > 0 {
		r.sleep(r.cfg.Ramp * time.Duration(id) / time.Duration(r.cfg.Clients))
	}
	refusedInARow := 0
	for r.runCtx.Err() == nil {
		leaseID, retry, err := r.acquire(api, id, holder, st)
		switch {
		case err != nil && r.hardCtx.Err() != nil:
			return // cut off by the drain deadline
		case retry:
			refusedInARow++
			r.sleep(r.backoff(err, refusedInARow, rng))
			continue
		case err != nil:
			r.failed(st, err)
			r.sleep(100 * time.Millisecond)
			continue
		}
		refusedInARow = 0
		r.holding(+1)
		var renderErr error
		if !r.cfg.NoRender {
			renderErr = r.render(api, leaseID, rng, st)
		} else if r.cfg.Hold > 0 {
			r.sleepHard(r.cfg.Hold)
		}
		// The lease is no longer counted as held once the release is on its
		// way: the server may hand the slot to someone else before our
		// ReleaseLease returns, and counting it until then would report an
		// over-admission that did not happen.
		r.holding(-1)
		relErr := r.release(api, leaseID)
		switch {
		case renderErr != nil && r.hardCtx.Err() != nil:
			st.aborted++
		case renderErr != nil:
			r.failed(st, renderErr)
			r.sleep(100 * time.Millisecond) // do not hammer a broken server
		case relErr != nil:
			r.failed(st, relErr)
			r.sleep(100 * time.Millisecond)
		default:
			st.completed++
			r.liveDone.Add(1)
		}
	}
}

// acquire makes one AcquireLease call and records its latency. retry reports
// a RESOURCE_EXHAUSTED refusal (err then holds the status).
func (r *loadRun) acquire(api whirlv1.AnimationServiceClient, id int, holder string, st *clientStats) (leaseID string, retry bool, err error) {
	ctx, cancel := context.WithTimeout(r.hardCtx, r.cfg.AcquireTimeout)
	defer cancel()
	t := time.Now()
	var trailer metadata.MD
	l, err := api.AcquireLease(ctx, &whirlv1.AcquireLeaseRequest{Holder: holder}, grpc.Trailer(&trailer))
	d := time.Since(t)
	if r.hardCtx.Err() != nil && err != nil {
		return "", false, err
	}
	sample := acquireSample{at: t.Sub(r.start), d: d, client: id}
	defer func() { st.acquires = append(st.acquires, sample) }()
	if err == nil {
		sample.outcome = "granted"
		return l.GetLeaseId(), false, nil
	}
	s := status.Convert(err)
	if s.Code() != codes.ResourceExhausted {
		sample.outcome = "error"
		return "", false, fail(failAcquire, "AcquireLease: %s: %s", s.Code(), s.Message())
	}
	r.liveRefused.Add(1)
	if isLeaseRefusal(s) {
		sample.outcome = "refused"
		st.refusedLease++
		if d, ok := retryInfo(s); ok {
			st.retryHints = append(st.retryHints, d)
		}
	} else {
		sample.outcome = "other"
		st.refusedOther++
		if st.otherExample == "" {
			st.otherExample = fmt.Sprintf("%s: %s (details %v)", s.Code(), s.Message(), s.Details())
		}
	}
	return "", true, &refusal{st: s, pushback: pushback(trailer)}
}

// refusal is a RESOURCE_EXHAUSTED answer to AcquireLease.
type refusal struct {
	st *status.Status
	// pushback is the grpc-retry-pushback-ms trailer, -1 if absent.
	pushback time.Duration
}

func (e *refusal) Error() string { return e.st.Err().Error() }

func pushback(md metadata.MD) time.Duration {
	v := md.Get("grpc-retry-pushback-ms")
	if len(v) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return time.Duration(n) * time.Millisecond
}

// isLeaseRefusal tells a full lease pool (QuotaFailure on subject "leases")
// from any other RESOURCE_EXHAUSTED, such as a per-peer rate limit.
func isLeaseRefusal(s *status.Status) bool {
	for _, d := range s.Details() {
		if q, ok := d.(*errdetails.QuotaFailure); ok {
			for _, v := range q.GetViolations() {
				if v.GetSubject() == "leases" {
					return true
				}
			}
		}
	}
	return false
}

// backoff is the wait after the n-th refusal in a row. The server's hint
// d is its RetryInfo delay, else its grpc-retry-pushback-ms trailer, else
// 50 ms doubling per refusal in a row. A hint under MaxBackoff is honoured,
// with up to half of it again added as jitter: [d, 1.5d]. A longer one
// (a full pool says when the earliest lease would expire, often minutes
// away, while releases free slots much sooner) is cut to MaxBackoff and
// drawn from [MaxBackoff/2, MaxBackoff]. Either way refused clients do not
// come back in lockstep.
func (r *loadRun) backoff(err error, n int, rng *rand.Rand) time.Duration {
	d := time.Duration(-1)
	var rf *refusal
	if errors.As(err, &rf) {
		d = rf.pushback
		if ri, ok := retryInfo(rf.st); ok {
			d = ri
		}
		if d >= 0 && !isLeaseRefusal(rf.st) {
			// A rate limit is per caller IP, and clients may share one: a
			// floor doubling per refusal in a row keeps a crowd behind one
			// address from retrying in lockstep at the limiter's pace.
			d = max(d, expBackoff(n))
		}
	}
	if d < 0 {
		d = expBackoff(n)
	}
	d = max(d, time.Millisecond)
	if c := r.cfg.MaxBackoff; d >= c {
		return c/2 + time.Duration(rng.Int64N(int64(c/2)+1))
	}
	return d + time.Duration(rng.Int64N(int64(d/2)+1))
}

// retryInfo is the google.rpc.RetryInfo delay in s, if any.
func retryInfo(s *status.Status) (time.Duration, bool) {
	for _, det := range s.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// expBackoff is 50 ms doubling per refusal in a row (n >= 1).
func expBackoff(n int) time.Duration {
	return 50 * time.Millisecond << min(max(n-1, 0), 10)
}

// sleepHard sleeps for d or until the drain deadline.
func (r *loadRun) sleepHard(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.hardCtx.Done():
	}
}

func (r *loadRun) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.runCtx.Done():
	}
}

func (r *loadRun) holding(delta int64) {
	n := r.held.Add(delta)
	for {
		m := r.maxHeld.Load()
		if n <= m || r.maxHeld.CompareAndSwap(m, n) {
			break
		}
	}
	if delta > 0 && n > int64(r.capacity) {
		r.overClient.Add(1)
		r.logf("OVER-ADMISSION: clients hold %d leases, capacity %d", n, r.capacity)
	}
}

func (r *loadRun) failed(st *clientStats, err error) {
	st.failed++
	r.liveFailed.Add(1)
	kind := "other"
	var ce *cycleError
	if errors.As(err, &ce) {
		kind = ce.kind
	}
	st.failures[kind]++
	if r.failLines.Add(1) <= 20 {
		r.logf("FAILED: %v", err)
	}
}

func (r *loadRun) release(api whirlv1.AnimationServiceClient, leaseID string) error {
	// Released even after the drain deadline: a lease left behind would
	// hold a slot until its TTL ran out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.hardCtx), 5*time.Second)
	defer cancel()
	if _, err := api.ReleaseLease(ctx, &whirlv1.ReleaseLeaseRequest{LeaseId: leaseID}); err != nil {
		s := status.Convert(err)
		return fail(failRelease, "ReleaseLease: %s: %s", s.Code(), s.Message())
	}
	return nil
}

// render streams one animation and checks everything the contract promises
// about the stream: progress before or between the rest, one header before
// any chunk, chunks contiguous from offset 0 and at most 64 KiB, a trailer
// last whose length, frame count and SHA-256 match what arrived, and a clean
// end after it.
func (r *loadRun) render(api whirlv1.AnimationServiceClient, leaseID string, rng *rand.Rand, st *clientStats) error {
	ctx, cancel := context.WithTimeout(r.hardCtx, r.cfg.RenderTimeout)
	defer cancel()
	cfg := r.cfg
	req := &whirlv1.RenderAnimationRequest{
		LeaseId: leaseID,
		Source:  &whirlv1.RenderAnimationRequest_Generate{Generate: &whirlv1.GenerateCurveRequest{Seed: rng.Uint64()}},
		Video: &whirlv1.VideoOptions{
			Width: int32(cfg.Width), Height: int32(cfg.Height), Fps: int32(cfg.FPS), Frames: int32(cfg.Frames),
		},
	}
	start := time.Now()
	stream, err := api.RenderAnimation(ctx, req)
	if err != nil {
		s := status.Convert(err)
		return fail(failRenderStart, "RenderAnimation: %s: %s", s.Code(), s.Message())
	}
	var (
		h        = sha256.New()
		offset   int64
		header   *whirlv1.RenderHeader
		trailer  *whirlv1.RenderTrailer
		segEnds  int
		firstFrg time.Duration
	)
	for trailer == nil {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return fail(failNoTrailer, "stream ended after %d bytes without a trailer", offset)
		}
		if err != nil {
			s := status.Convert(err)
			return fail(failStatus, "stream ended with %s: %s (after %d bytes)", s.Code(), s.Message(), offset)
		}
		switch e := ev.GetEvent().(type) {
		case *whirlv1.RenderAnimationResponse_Progress:
			st.maxQueue = max(st.maxQueue, int(e.Progress.GetQueuePosition()))
		case *whirlv1.RenderAnimationResponse_Header:
			if header != nil {
				return fail(failOrder, "second header")
			}
			header = e.Header
			if header.GetWidth() != int32(cfg.Width) || header.GetHeight() != int32(cfg.Height) ||
				header.GetFps() != int32(cfg.FPS) || header.GetFrames() != int32(cfg.Frames) {
				return fail(failHeader, "header %dx%d %d fps %d frames, asked %dx%d %d fps %d frames",
					header.GetWidth(), header.GetHeight(), header.GetFps(), header.GetFrames(),
					cfg.Width, cfg.Height, cfg.FPS, cfg.Frames)
			}
		case *whirlv1.RenderAnimationResponse_Chunk:
			c := e.Chunk
			if header == nil {
				return fail(failOrder, "chunk before header")
			}
			if c.GetOffset() != offset {
				return fail(failOffset, "chunk at offset %d, want %d", c.GetOffset(), offset)
			}
			if n := len(c.GetData()); n == 0 || n > 64<<10 {
				return fail(failChunkSize, "chunk of %d bytes", n)
			}
			h.Write(c.GetData())
			offset += int64(len(c.GetData()))
			if c.GetSegmentEnd() {
				segEnds++
				if segEnds == 2 { // the first ends the init segment
					firstFrg = time.Since(start)
				}
			}
		case *whirlv1.RenderAnimationResponse_Trailer:
			trailer = e.Trailer
		default:
			return fail(failOrder, "unknown event %T", e)
		}
	}
	total := time.Since(start)
	if ev, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return fail(failAfter, "after the trailer: event %v, error %v", ev, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	switch {
	case header == nil:
		return fail(failOrder, "trailer without header")
	case trailer.GetSha256() != sum:
		return fail(failSHA, "trailer sha256 %s, received bytes hash to %s", trailer.GetSha256(), sum)
	case trailer.GetTotalBytes() != offset:
		return fail(failTotal, "trailer says %d bytes, received %d", trailer.GetTotalBytes(), offset)
	case trailer.GetFrames() != int32(cfg.Frames):
		return fail(failTotal, "trailer says %d frames, asked %d", trailer.GetFrames(), cfg.Frames)
	case segEnds < 2:
		return fail(failNoFragment, "%d segment ends: no media fragment after the init segment", segEnds)
	}
	st.firstFragment = append(st.firstFragment, firstFrg)
	st.renderTotal = append(st.renderTotal, total)
	st.bytes += offset
	return nil
}

// writeAcquireLog writes every AcquireLease call, in start order, as CSV.
func writeAcquireLog(w io.Writer, stats []*clientStats) {
	var all []acquireSample
	for _, st := range stats {
		all = append(all, st.acquires...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at < all[j].at })
	fmt.Fprintln(w, "start_ms,latency_ms,client,outcome")
	for _, a := range all {
		fmt.Fprintf(w, "%.3f,%.3f,%d,%s\n", ms(a.at), ms(a.d), a.client, a.outcome)
	}
}

// isLoopback reports whether addr's host is an IPv4 loopback address or
// localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() != nil && ip.IsLoopback()
}

// sourceIP is connection i's source address: 127.1.0.1, 127.1.0.2, ...
// Linux routes all of 127.0.0.0/8 to the loopback device, so any of these
// can be bound without configuration.
func sourceIP(i int) net.IP {
	return net.IPv4(127, 1, byte(i/250), byte(i%250+1))
}

func dialFrom(ip net.IP) func(context.Context, string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp4", addr)
	}
}

// wakeupProbe sleeps for period again and again until ctx ends and returns
// how late each wake-up was. It is the scheduling delay any goroutine of
// this process sees on this machine at the moment: the floor under every
// latency the clients measure.
func wakeupProbe(ctx context.Context, period time.Duration) []time.Duration {
	var late []time.Duration
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		start := time.Now()
		t.Reset(period)
		select {
		case <-ctx.Done():
			return late
		case <-t.C:
			late = append(late, max(time.Since(start)-period, 0))
		}
	}
}

// connectAll brings every connection to READY.
func connectAll(ctx context.Context, conns []*grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, c := range conns {
		c.Connect()
	}
	for _, c := range conns {
		for {
			s := c.GetState()
			if s == connectivity.Ready {
				break
			}
			if !c.WaitForStateChange(ctx, s) {
				return fmt.Errorf("connecting to %s: %s (%w)", c.Target(), s, ctx.Err())
			}
		}
	}
	return nil
}

// adminPoller watches the server's own lease count.
type adminPoller struct {
	api   whirlv1.LeaseAdminServiceClient
	token string
	every time.Duration

	// Written by run's goroutine only, read after it ends.
	polls, errors int
	maxCount      int
	over          int // polls that saw more live leases than capacity
	lastErr       string
}

func (p *adminPoller) list(ctx context.Context) (*whirlv1.ListLeasesResponse, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+p.token)
	return p.api.ListLeases(ctx, &whirlv1.ListLeasesRequest{})
}

func (p *adminPoller) run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := p.list(cctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.errors++
			p.lastErr = err.Error()
		default:
			p.polls++
			n := max(int(resp.GetCount()), len(resp.GetLeases()))
			p.maxCount = max(p.maxCount, n)
			if n > int(resp.GetCapacity()) {
				p.over++
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// report merges the clients' figures.
func (r *loadRun) report(stats []*clientStats, elapsed time.Duration) *Report {
	rep := &Report{
		Config: ReportConfig{
			Addr: r.cfg.Addr, Clients: r.cfg.Clients, Conns: r.cfg.Conns, DurationSeconds: r.cfg.Duration.Seconds(),
			Width: r.cfg.Width, Height: r.cfg.Height, Frames: r.cfg.Frames, FPS: r.cfg.FPS,
			MaxBackoffSeconds: r.cfg.MaxBackoff.Seconds(), Seed: r.cfg.Seed, RampSeconds: r.cfg.Ramp.Seconds(),
			DistinctIPs: r.cfg.DistinctIPs && isLoopback(r.cfg.Addr), NoRender: r.cfg.NoRender, HoldSeconds: r.cfg.Hold.Seconds(),
		},
		Mode:           "external",
		ElapsedSeconds: elapsed.Seconds(),
		CPUs:           runtime.NumCPU(),
		Failures:       map[string]int{},
		Leases: LeaseReport{
			Capacity:     r.capacity,
			MaxHeld:      int(r.maxHeld.Load()),
			OverAdmitted: int(r.overClient.Load()),
		},
	}
	var all, granted, first, total, hints []time.Duration
	for _, st := range stats {
		hints = append(hints, st.retryHints...)
		for _, a := range st.acquires {
			all = append(all, a.d)
			if a.outcome == "granted" {
				granted = append(granted, a.d)
			}
		}
		first = append(first, st.firstFragment...)
		total = append(total, st.renderTotal...)
		rep.Completed += st.completed
		rep.RefusedLease += st.refusedLease
		rep.RefusedOther += st.refusedOther
		rep.Failed += st.failed
		rep.Aborted += st.aborted
		rep.Bytes += st.bytes
		rep.MaxQueuePosition = max(rep.MaxQueuePosition, st.maxQueue)
		if rep.RefusedOtherExample == "" {
			rep.RefusedOtherExample = st.otherExample
		}
		for k, v := range st.failures {
			rep.Failures[k] += v
		}
	}
	rep.Refused = rep.RefusedLease + rep.RefusedOther
	rep.AcquireAll = latency(all)
	rep.AcquireGranted = latency(granted)
	rep.FirstFragment = latency(first)
	rep.RenderTotal = latency(total)
	rep.RetryInfo = latency(hints)
	if elapsed > 0 {
		rep.RendersPerSecond = float64(rep.Completed) / elapsed.Seconds()
	}
	rep.OverAdmission = rep.Leases.OverAdmitted > 0
	return rep
}

// latency summarizes samples with nearest-rank percentiles, in milliseconds.
func latency(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		i = min(max(i, 0), len(s)-1)
		return ms(s[i])
	}
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return Latency{
		N: len(s), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: ms(s[len(s)-1]),
		Mean: ms(sum / time.Duration(len(s))),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
