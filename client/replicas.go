package client

import (
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// replicasScheme names the resolver of a comma-separated list of replicas.
const replicasScheme = "whirl-replicas"

// replicaTarget turns Dial's addr into a gRPC target and the dial options it
// needs. A comma-separated list of host:port becomes one channel over all of
// them, and a dns:/// target one over every address the name resolves to;
// both balance calls round robin, and a call that breaks is retried on
// another ready replica (see Render). The list's authority (and TLS server
// name, unless WithServerName) is its first entry's.
func replicaTarget(addr string) (target string, opts []grpc.DialOption, balanced bool) {
	if strings.Contains(addr, ",") {
		var addrs []resolver.Address
		for a := range strings.SplitSeq(addr, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, resolver.Address{Addr: a})
			}
		}
		if len(addrs) > 0 {
			// One resolver per channel: nothing is registered globally.
			r := manual.NewBuilderWithScheme(replicasScheme)
			r.InitialState(resolver.State{Addresses: addrs})
			return replicasScheme + ":///" + addrs[0].Addr, []grpc.DialOption{grpc.WithResolvers(r)}, true
		}
	}
	return addr, nil, strings.HasPrefix(addr, "dns:")
}
