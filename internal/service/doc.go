// Package service implements the whirl gRPC API: request validation, mapping
// between protobuf and the domain packages (lease, curve, render, encode),
// status codes with typed details, and the server's interceptor chain, health
// and reflection. Nothing below this package knows about gRPC.
package service
