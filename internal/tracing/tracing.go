// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables: off unless an OTLP endpoint is configured, then
// spans exported over OTLP (gRPC or HTTP/protobuf), sampled as
// OTEL_TRACES_SAMPLER says, with W3C trace context propagation; and a slog
// handler that puts the trace id into every log line of a traced call.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is the tracer provider and propagator a process uses. The zero
// value, which Setup returns when tracing is off, traces nothing.
type Tracing struct {
	// Provider makes the tracers; nil when tracing is off.
	Provider trace.TracerProvider
	// Propagator reads and writes W3C traceparent/tracestate and baggage.
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Enabled reports whether spans are recorded and exported.
func (t Tracing) Enabled() bool { return t.Provider != nil }

// Shutdown flushes the spans not yet exported and stops the exporter.
func (t Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Setup reads the OpenTelemetry variables through lookup (os.LookupEnv):
// tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, unless OTEL_TRACES_EXPORTER
// or OTEL_SDK_DISABLED turn it off. OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL
// picks grpc or http/protobuf (the default); the exporters read their own
// variables (endpoint, headers, timeout, TLS) and the SDK its sampler
// (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG; default: parent-based,
// always on) and resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
// service is the service name when OTEL_SERVICE_NAME is unset, version the
// service version. lookup decides whether tracing is on and how; the
// exporters and the SDK read their own variables from the process
// environment, so outside tests lookup is os.LookupEnv.
func Setup(ctx context.Context, lookup func(string) (string, bool), service, version string) (Tracing, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	t := Tracing{Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return t, nil
	}
	switch exporter := get("OTEL_TRACES_EXPORTER"); exporter {
	case "none":
		return t, nil
	case "", "otlp":
	default:
		return t, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", exporter)
	}
	if get("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return t, nil
	}
	exp, err := newExporter(ctx, get)
	if err != nil {
		return t, err
	}
	res, err := resource.Merge(
		resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.Environment(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return t, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.Provider, t.shutdown = tp, tp.Shutdown
	return t, nil
}

func newExporter(ctx context.Context, get func(string) string) (sdktrace.SpanExporter, error) {
	protocol := get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = get("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "grpc":
		return otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		return otlptracehttp.New(ctx)
	}
	return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want grpc or http/protobuf", protocol)
}

// LogHandler adds trace_id and span_id to every record logged with a
// context that carries a recording span, so a traced call's log lines lead
// to its trace.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }
