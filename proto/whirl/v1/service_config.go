// Package whirlv1 is whirl's public contract for Go: the code generated from
// animation.proto, and the gRPC service config every client loads.
package whirlv1

import _ "embed"

//go:embed service_config.json
var serviceConfig string

// ServiceConfig returns whirl's gRPC service config (service_config.json
// beside animation.proto), for grpc.WithDefaultServiceConfig. Its retry
// policies: AcquireLease is retried on RESOURCE_EXHAUSTED and UNAVAILABLE,
// after the server's grpc-retry-pushback-ms when a refusal carries one (gRPC
// retries honour that trailer, not google.rpc.RetryInfo), else with
// exponential backoff; GenerateCurve and RenderStill, which change nothing,
// on UNAVAILABLE. RenderAnimation is never retried by the channel: a client
// resumes a broken stream itself. Other languages load the same JSON.
func ServiceConfig() string { return serviceConfig }
