package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Scenario is one run: replicas already started, the faults to inject
// among them, the traffic to drive.
type Scenario struct {
	Name     string
	Seed     uint64
	Duration time.Duration
	Clients  int
	Params   Params
	Replicas []*Replica
	Rec      *Recorder
	Token    string
	Video    Video
	Faults   []Fault
	// FaultInterval is the mean time between faults.
	FaultInterval time.Duration
	// CheckTimeout bounds porcupine's search.
	CheckTimeout time.Duration
}

// SamplePeriod is how often the sampler reads the replicas: at least 20 Hz.
// The period is shorter than 50 ms so that the rate stays above 20 Hz when
// the machine is busy and a sample comes late.
const SamplePeriod = 40 * time.Millisecond

// Report is what a run found.
type Report struct {
	Seed       uint64
	History    []Op
	Samples    []Sample
	Faults     []FaultLog
	Violations []string
	Check      porcupine.CheckResult
	Info       porcupine.LinearizationInfo
	GaugeSeen  bool
	// Gauge is the running-renders gauge the replicas export.
	Gauge string
	// SampleRate is the samples taken per second, on average, and
	// LongestGap the longest time between two samples.
	SampleRate float64
	LongestGap time.Duration
	// GapAt is when the longest gap ended; SlowGaps counts the gaps longer
	// than 50 ms (below 20 Hz).
	GapAt    int64
	SlowGaps int
}

// sampleRate measures how often the sampler managed to sample.
func sampleRate(samples []Sample) (perSecond float64, longest time.Duration, at int64, slow int) {
	if len(samples) < 2 {
		return 0, 0, 0, 0
	}
	for i := 1; i < len(samples); i++ {
		gap := time.Duration(samples[i].T - samples[i-1].T)
		if gap > 50*time.Millisecond {
			slow++
		}
		if gap > longest {
			longest, at = gap, samples[i].T
		}
	}
	span := time.Duration(samples[len(samples)-1].T - samples[0].T)
	return float64(len(samples)-1) / span.Seconds(), longest, at, slow
}

// Run drives the traffic and faults for s.Duration, lets the pool drain,
// and checks what happened.
func Run(ctx context.Context, s Scenario) *Report {
	rep := &Report{Seed: s.Seed}
	traffic := &Traffic{Replicas: s.Replicas, Rec: s.Rec, Token: s.Token, Video: s.Video}
	sampler := &Sampler{Replicas: s.Replicas, Rec: s.Rec, VideoSize: fmt.Sprintf("%dx%d", s.Video.Width, s.Video.Height)}

	sampling, stopSampling := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { rep.Samples = sampler.Run(sampling, SamplePeriod) })

	running, stop := context.WithTimeout(ctx, s.Duration)
	defer stop()
	bg.Go(func() {
		rng := rand.New(rand.NewPCG(s.Seed, uint64(s.Clients)))
		rep.Faults = injectFaults(running, s.Rec, s.Faults, rng, s.FaultInterval)
	})
	traffic.Run(running, s.Clients, s.Seed)
	// The fault under way (if any) repairs what it broke before returning.
	stop()
	drained := drain(ctx, s, traffic)
	stopSampling()
	bg.Wait()

	rep.History = s.Rec.Ops()
	rep.SampleRate, rep.LongestGap, rep.GapAt, rep.SlowGaps = sampleRate(rep.Samples)
	rep.Violations = append(rep.Violations, drained...)
	sampled, gaugeSeen := CheckSamples(rep.Samples, s.Params.Capacity)
	rep.GaugeSeen, rep.Gauge = gaugeSeen, sampler.Gauge()
	rep.Violations = append(rep.Violations, sampled...)
	rep.Violations = append(rep.Violations, CheckEncodersSeen(rep.Samples, rep.History)...)
	rep.Violations = append(rep.Violations, CheckRendersAfterEnd(rep.History, rep.Faults, s.Params)...)
	rep.Violations = append(rep.Violations, CheckAccounted(rep.History)...)
	rep.Check, rep.Info = porcupine.CheckOperationsVerbose(s.Params.Model(), s.Params.Operations(rep.History), s.CheckTimeout)
	switch rep.Check {
	case porcupine.Illegal:
		rep.Violations = append(rep.Violations, "linearizability: the history is not one the lease pool model allows (see porcupine.html)")
	case porcupine.Unknown:
		rep.Violations = append(rep.Violations, fmt.Sprintf("linearizability: porcupine found no answer within %v", s.CheckTimeout))
	}
	if rep.Check != porcupine.Ok {
		if d := s.Params.Diagnose(rep.History, 5*time.Second); d != "" {
			rep.Violations = append(rep.Violations, "linearizability: "+d)
		}
	}
	return rep
}

// drain waits until the pool is empty: every client released what it held,
// and leases of unknown outcome expire within their TTL. It lists through
// each replica in turn, recording the listings, and reports a pool that
// stays non-empty.
func drain(ctx context.Context, s Scenario, t *Traffic) []string {
	p := s.Params
	c := &caller{id: s.Clients + 1, rec: s.Rec, token: s.Token}
	deadline := time.Now().Add(2*(p.TTL+p.Late) + p.OrphanGrace + 5*time.Second)
	var last Output
	for i := 0; ; i++ {
		r := t.Replicas[i%len(t.Replicas)]
		last, _ = c.list(ctx, r)
		if last.Result == ResultOK && last.Count == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return []string{fmt.Sprintf("pool not empty at the end: the last listing (%s) shows %d leases, holders %v (%s %s)",
				last.Result, last.Count, last.Holders, last.Code, last.Err)}
		}
		sleep(ctx, 250*time.Millisecond)
	}
}
