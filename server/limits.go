package main

import (
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/whirl-dev/whirl/internal/nice"
	"github.com/whirl-dev/whirl/internal/queue"
	"github.com/whirl-dev/whirl/internal/service"
)

// limitFlags are the flags that keep one client from starving the others:
// per-client rates and in-flight caps on the calls that need no lease, and
// the bounds of the lines waiting for still and render slots.
type limitFlags struct {
	clientKey     string
	still, curve  service.ClientLimits
	video         service.ClientLimits
	stillSlots    int
	stillNice     int
	stillQueue    int
	stillMaxWait  time.Duration
	renderMaxWait time.Duration
}

// headerName is what --client-key=header:NAME accepts: a gRPC metadata key
// in lower case, not binary and not reserved for gRPC itself.
var headerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

func (l *limitFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.clientKey, "client-key", "ip", "what a client is for the per-client limits: ip (its address) or header:NAME (a request header a trusted proxy sets; calls without it count by address)")
	fs.Float64Var(&l.still.Rate, "still-rate", 10, "RenderStill calls allowed per second per client (0: unlimited)")
	fs.IntVar(&l.still.Burst, "still-burst", 20, "burst of RenderStill calls allowed per client above --still-rate")
	fs.IntVar(&l.still.InFlight, "still-inflight", 2, "RenderStill calls one client may have under way at once, queued ones included (0: unlimited)")
	fs.Float64Var(&l.curve.Rate, "curve-rate", 100, "GenerateCurve calls allowed per second per client (0: unlimited)")
	fs.IntVar(&l.curve.Burst, "curve-burst", 200, "burst of GenerateCurve calls allowed per client above --curve-rate")
	fs.IntVar(&l.curve.InFlight, "curve-inflight", 8, "GenerateCurve calls one client may have under way at once (0: unlimited)")
	fs.Float64Var(&l.video.Rate, "video-rate", 20, "GetVideo calls and HTTP video reads (/v1/videos/) allowed per second per client (0: unlimited)")
	fs.IntVar(&l.video.Burst, "video-burst", 40, "burst of GetVideo calls allowed per client above --video-rate")
	fs.IntVar(&l.video.InFlight, "video-inflight", 8, "GetVideo calls and HTTP video reads one client may have under way at once (0: unlimited)")
	fs.IntVar(&l.stillSlots, "still-slots", service.DefaultStillSlots(), "stills drawn at once; a core is left for the cheap calls")
	fs.IntVar(&l.stillNice, "still-nice", nice.Max, "niceness stills are drawn at above the server's, 0-19 (Linux): drawing yields the CPU to RPC handling")
	fs.IntVar(&l.stillQueue, "still-queue", 8, "stills that may wait for a slot; more are refused at once")
	fs.DurationVar(&l.stillMaxWait, "still-max-wait", 2*time.Second, "how long a still may wait for a slot before it is refused")
	fs.DurationVar(&l.renderMaxWait, "render-max-wait", time.Minute, "how long an animation may wait for a render slot before it is refused, its lease kept (0: as long as the client waits)")
}

// header returns the header --client-key names, "" for ip.
func (l limitFlags) header() (string, error) {
	if l.clientKey == "ip" {
		return "", nil
	}
	name, ok := strings.CutPrefix(l.clientKey, "header:")
	name = strings.ToLower(name)
	if !ok || !headerName.MatchString(name) || strings.HasPrefix(name, "grpc-") || strings.HasSuffix(name, "-bin") {
		return "", fmt.Errorf("--client-key must be ip or header:NAME with NAME a text metadata key (not grpc-*, not *-bin), got %q", l.clientKey)
	}
	return name, nil
}

func (l limitFlags) check() error {
	if _, err := l.header(); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		l    service.ClientLimits
	}{{"still", l.still}, {"curve", l.curve}, {"video", l.video}} {
		if c.l.Rate < 0 || c.l.Burst < 1 || c.l.InFlight < 0 || c.l.InFlight > 1024 {
			return fmt.Errorf("--%[1]s-rate must be >= 0, --%[1]s-burst >= 1 and --%[1]s-inflight 0-1024", c.name)
		}
	}
	switch {
	case l.stillSlots < 1 || l.stillSlots > 1024:
		return fmt.Errorf("--still-slots must be 1-1024, got %d", l.stillSlots)
	case l.stillNice < 0 || l.stillNice > nice.Max:
		return fmt.Errorf("--still-nice must be 0-%d, got %d", nice.Max, l.stillNice)
	case l.stillQueue < 1 || l.stillQueue > 10000:
		return fmt.Errorf("--still-queue must be 1-10000, got %d", l.stillQueue)
	case l.stillMaxWait <= 0 || l.stillMaxWait > time.Minute:
		return fmt.Errorf("--still-max-wait must be above 0 and at most 1m, got %s", l.stillMaxWait)
	case l.renderMaxWait < 0 || l.renderMaxWait > time.Hour:
		return fmt.Errorf("--render-max-wait must be 0-1h, got %s", l.renderMaxWait)
	}
	return nil
}

// apply sets the limits in a service configuration; l has passed check.
func (l limitFlags) apply(c *service.Config) {
	c.ClientHeader, _ = l.header()
	c.StillLimits, c.CurveLimits, c.VideoLimits = l.still, l.curve, l.video
	c.StillSlots, c.StillNice = l.stillSlots, l.stillNice
	c.StillQueue = queue.Limits{MaxWaiting: l.stillQueue, MaxWait: l.stillMaxWait}
	c.RenderMaxWait = l.renderMaxWait
}
