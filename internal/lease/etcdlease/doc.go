// Package etcdlease is a lease.Registry kept in etcd, so that several whirl
// replicas share one pool of at most Capacity leases.
//
// # Layout
//
// Everything lives under one key prefix P (give every pool its own prefix):
//
//	P/config               {"capacity":N}; every replica must agree on N
//	P/slots/<i>            i in [0,N): the lease record (JSON), attached to the
//	                       lease's own etcd lease
//	P/tokens/<sha256(tok)> the same record, keyed by the token's hash, attached
//	                       to the same etcd lease: any replica resolves a token
//	P/pins/<sha256(tok)>   pin marker, attached to the same etcd lease
//	P/waiters/<id>         one key per blocked Acquire(wait=true), attached to
//	                       its replica's session lease; FIFO by CreateRevision
//
// A record holds the handle, holder, acquisition time, maximum expiry, slot
// and the SHA-256 of the token. The token itself is never written to etcd:
// reading etcd does not let anyone act as a holder.
//
// # Admission
//
// A lease is granted by ONE etcd transaction: a chain of nested transactions,
// one per slot, each putting the record only if CreateRevision(slot) == 0
// (the slot is free), so one round trip takes the first free slot or none.
// Since every put is guarded by its own compare inside one serialisable
// transaction, no interleaving of replicas can fill more than N slots. (A
// cheap read precedes the transaction to skip it when the pool is visibly
// full; that read only saves work, it never admits anyone.) Capacities above
// 32 are tried in chunks of 32 slots per transaction, each equally atomic.
// Each replica runs at most Capacity attempts at once, so a storm of callers
// costs etcd one read per refused caller rather than a doomed grant,
// transaction and revoke each; RetryAfter (the earliest remaining etcd lease
// TTL, pinned leases left out) is cached for 250 ms for the same reason.
//
// A blocked Acquire(wait=true) registers a waiter key and takes a slot only
// in a transaction that also checks that no older waiter key exists; a
// non-waiting Acquire's transaction checks that no waiter exists at all. So,
// across all replicas, freed slots go to the oldest waiter first, like the
// in-memory registry. Waiters wake on etcd watch events (slot or waiter
// deletions) and poll once a second as a safety net. A replica that dies
// leaves its waiter keys behind for at most the session TTL (default 3 s),
// during which they hold back the queue; then etcd deletes them.
//
// # Expiry: never early, only late
//
// The sliding TTL is an etcd lease: Acquire grants one, Renew and unpin send
// one keep-alive, Release and Revoke revoke it, and etcd deletes every key
// attached to it when it expires. Operators should know that:
//
//   - etcd lease TTLs are whole seconds. The TTL is rounded up to a whole
//     second and to at least 2 s (etcd's own minimum is 1.5 × the election
//     timeout, rounded up: 2 s with the default 1 s election timeout; a larger
//     election timeout raises it, and etcd silently grants the larger TTL).
//   - ExpiresAt as reported is a lower bound. etcd never ends a lease before
//     its TTL, but it ends it late: its expiry loop runs every ~0.5 s, and on
//     a leader change the new leader restarts every lease's countdown with
//     the full TTL plus the election timeout (unless lease checkpointing is
//     enabled: --experimental-enable-lease-checkpoint on 3.4/3.5,
//     --feature-gates=LeaseCheckpoint=true on 3.6+). So a slot of a holder
//     that vanished frees at most about TTL + election timeout after its
//     reported ExpiresAt in the worst case, typically within 0.5 s.
//   - Freeing is late, admission is exact: the capacity is never exceeded.
//   - The maximum age is enforced from the record, against the local clock of
//     the replica serving the call: keep replicas' clocks NTP-synchronised.
//     Renew is refused with lease.ErrTooOld when now+TTL would pass
//     MaxExpiresAt. An unpin after the maximum age revokes the lease at once;
//     an unpin shortly before it renews the etcd lease and arms a timer in
//     the unpinning replica that revokes it at MaxExpiresAt (if that replica
//     dies first, etcd ends it at most one TTL later).
//   - A pin is a keep-alive loop in the replica that pinned (every TTL/3). If
//     that replica dies or loses etcd for longer than the TTL, the lease and
//     its pin end with it: a pin cannot outlive its replica.
//
// # Failures
//
// Every etcd call runs under a per-operation timeout (WithOpTimeout, default
// 2 s) and with etcd's require-leader option, so a partitioned or quorum-less
// etcd fails fast. Any such failure is reported as lease.ErrUnavailable
// (wrapping the cause) and nothing is granted: the registry fails closed. If
// the caller's own context ends first, its ctx.Err() is returned instead.
// When etcd comes back the client reconnects on its own; nothing needs
// restarting. Healthy performs a linearizable read for health checks.
//
// A transaction whose answer is lost (timeout after the server applied it)
// may leave an unreachable lease in a slot until its TTL ends: capacity is
// under-used for one TTL, never exceeded.
//
// Config.Observer hears of this replica's grants, refusals and releases like
// the memory registry's observer, but never Expired: expiries happen inside etcd,
// unseen by any one replica (counting them would need a watch per replica and
// a way to tell expiry from release). Snapshot.Waiting counts this replica's
// blocked Acquire calls only.
package etcdlease
