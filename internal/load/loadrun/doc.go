// Package loadrun drives many concurrent whirl clients through the whole
// acquire → render → release cycle against a running server for a fixed
// time and reports admission, latency, throughput and the resources the
// server and the machine spent. The load command (internal/load) is its
// flags; Run is the run itself.
//
// Every client loops: AcquireLease (no wait); on RESOURCE_EXHAUSTED (a full
// pool, or the server's per-client rate limit) it waits as the server says
// (RetryInfo, else the grpc-retry-pushback-ms trailer) with jitter, at most
// Config.MaxBackoff, and tries again: a refusal is expected, not a failure.
// Once granted it streams one RenderAnimation and checks it with the
// client package's StreamVerifier (header before chunks, contiguous offsets,
// trailer last with matching length, frames and SHA-256, nothing after it),
// plus a header that describes the request and at least one media fragment,
// then releases the lease. Anything else unexpected is a
// failure. With an admin token a poller calls ListLeases every 100 ms; the
// clients also count the leases they hold. Either count above capacity is
// an over-admission.
//
// Against a loopback server each connection dials from its own source
// address (127.1.x.y), so the server's per-IP AcquireLease rate limit sees
// 50 callers rather than one (Config.DistinctIPs false to share one address).
// AcquireLease latency is measured on connections already established.
//
// Besides the counts and latencies, the report carries what is needed to
// tell where latency goes on a shared machine: the server's own handling
// time (its /metrics histogram), the CPU of the server, its ffmpeg children,
// the load generator and everything else on the machine, the run-queue wait
// of the server's and the load generator's threads (schedstat), and how late
// a 2 ms timer in the load generator wakes up. NoRender with Hold keeps the
// admission pattern without any render CPU.
//
// Two floor probes run beside the clients for Config.Duration, one sample every
// 10-30 ms: a 32-byte round trip over a loopback TCP connection inside the
// load generator (the machine's own wake-up and scheduling cost), and a gRPC
// health Check on a connection of its own to the server (the transport and
// the server's scheduling without the lease path). The AcquireLease p99
// target line quotes their p99s, to tell the lease path from that floor.
//
// Config.Flood makes the run an abuse test (see Flood): one client floods
// RenderStill from 127.0.0.2 while the clients cycle from 127.0.0.3 beside
// a GenerateCurve probe, whose idle baseline is taken first in the same
// run; the report adds the flood's answers and refusals by quota, both
// clients' latencies and targets for them.
//
// A new kind of run (another cycle, several client groups with their own
// source addresses) is a Config field read where the clients start
// (runClients) and loop (client); the samplers, the merge and the report
// stay as they are.
package loadrun
