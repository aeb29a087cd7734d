package client

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// WithTracing traces every call the client makes with OpenTelemetry: a
// client span per call, in the trace of the caller's context when it has
// one, and the W3C traceparent sent so the server's spans join the same
// trace. tp makes the spans; p writes the trace context (nil: W3C trace
// context alone).
func WithTracing(tp trace.TracerProvider, p propagation.TextMapPropagator) Option {
	if p == nil {
		p = propagation.TraceContext{}
	}
	return WithDialOptions(grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(p),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	)))
}
