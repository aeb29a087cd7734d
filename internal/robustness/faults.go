package robustness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/whirl-dev/whirl/internal/testetcd"
	"github.com/whirl-dev/whirl/internal/testserver"
)

// Fault is one kind of failure injected while the traffic runs.
type Fault struct {
	Name   string
	Inject func(ctx context.Context, rng *rand.Rand) (string, error)
}

// FaultLog is one injected fault, for the report.
type FaultLog struct {
	Name   string `json:"name"`
	Start  int64  `json:"start"`
	End    int64  `json:"end"`
	Detail string `json:"detail,omitempty"`
	Err    string `json:"err,omitempty"`
}

// injectFaults injects a fault about every interval until ctx ends, going
// through faults in a random order, round after round, so that a run long
// enough sees every kind.
func injectFaults(ctx context.Context, rec *Recorder, faults []Fault, rng *rand.Rand, interval time.Duration) []FaultLog {
	var logs []FaultLog
	if len(faults) == 0 {
		return nil
	}
	var order []int
	for {
		sleep(ctx, interval/2+time.Duration(rng.Int64N(int64(interval))))
		if ctx.Err() != nil {
			return logs
		}
		if len(order) == 0 {
			order = rng.Perm(len(faults))
		}
		f := faults[order[0]]
		order = order[1:]
		l := FaultLog{Name: f.Name, Start: rec.Now()}
		detail, err := f.Inject(ctx, rng)
		l.End, l.Detail = rec.Now(), detail
		if err != nil {
			l.Err = err.Error()
		}
		logs = append(logs, l)
	}
}

// The Name of the fault that cuts a replica off from etcd, and the Detail
// of a fault on one replica: CheckRendersAfterEnd reads both back.
const (
	cutEtcdFault  = "cut-etcd"
	replicaDetail = "replica %d"
)

// KillReplica SIGKILLs a replica and restarts it. On the memory store the
// pool dies with it: the history gets a crash operation spanning the
// outage, which empties the model's pool.
func KillReplica(replicas []*Replica, rec *Recorder, crashClient int) Fault {
	return Fault{Name: "kill-replica", Inject: func(ctx context.Context, rng *rand.Rand) (string, error) {
		r := replicas[rng.IntN(len(replicas))]
		done := rec.Begin(crashClient, Input{Kind: KindCrash, Replica: r.Index})
		r.Kill()
		sleep(ctx, time.Duration(200+rng.IntN(800))*time.Millisecond)
		err := r.Restart(context.WithoutCancel(ctx))
		done(Output{Result: ResultOK})
		return fmt.Sprintf(replicaDetail, r.Index), err
	}}
}

// KillEtcdMember kills an etcd member and starts it again a moment later.
func KillEtcdMember(c *testetcd.Cluster) Fault {
	return Fault{Name: "kill-etcd-member", Inject: func(ctx context.Context, rng *rand.Rand) (string, error) {
		i := rng.IntN(len(c.Members))
		m := c.Members[i]
		m.Stop()
		sleep(ctx, time.Duration(500+rng.IntN(2000))*time.Millisecond)
		return m.Name, m.Start()
	}}
}

// CutEtcd severs every connection of one replica to etcd (its proxies) for
// longer than a lease's TTL, then heals them.
func CutEtcd(proxies [][]*testserver.CutProxy, ttl time.Duration) Fault {
	return Fault{Name: cutEtcdFault, Inject: func(ctx context.Context, rng *rand.Rand) (string, error) {
		i := rng.IntN(len(proxies))
		for _, p := range proxies[i] {
			p.Sever()
		}
		sleep(ctx, ttl+time.Duration(rng.IntN(2000))*time.Millisecond)
		for _, p := range proxies[i] {
			p.Heal()
		}
		return fmt.Sprintf(replicaDetail, i), nil
	}}
}

// KillFFmpeg SIGKILLs one encoder a replica is running, waiting up to 2 s
// for one to appear.
func KillFFmpeg(replicas []*Replica, videoSize string) Fault {
	return Fault{Name: "kill-ffmpeg", Inject: func(ctx context.Context, rng *rand.Rand) (string, error) {
		fs, err := procfs.NewDefaultFS()
		if err != nil {
			return "", err
		}
		deadline := time.Now().Add(2 * time.Second)
		for ctx.Err() == nil && time.Now().Before(deadline) {
			r := replicas[rng.IntN(len(replicas))]
			if pid := r.PID(); pid != 0 {
				for _, k := range childPIDs(fs, pid) {
					if isEncoder(fs, k, videoSize) {
						return fmt.Sprintf("replica %d ffmpeg %d", r.Index, k), syscall.Kill(k, syscall.SIGKILL)
					}
				}
			}
			sleep(ctx, 50*time.Millisecond)
		}
		return "no encoder running", nil
	}}
}
