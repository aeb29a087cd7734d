package tracing

import (
	"strings"
	"testing"
)

// TestSetupIsOffUnlessConfigured: without an OTLP endpoint, or with the SDK
// or the exporter turned off, nothing is traced; unknown protocols and
// exporters are errors, not silence.
func TestSetupIsOffUnlessConfigured(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		enabled bool
		err     string
	}{
		{"nothing set", nil, false, ""},
		{"sampler alone", map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true, ""},
		{"traces endpoint, grpc", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}, false, ""},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}, false, ""},
		{"bad protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, "want grpc or http/protobuf"},
		{"bad exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "only otlp and none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			tr, err := Setup(t.Context(), lookup, "whirl", "test")
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("Setup: %v, want error %q", err, tt.err)
			}
			if tr.Enabled() != tt.enabled {
				t.Errorf("enabled %v, want %v", tr.Enabled(), tt.enabled)
			}
			if tr.Propagator == nil {
				t.Error("no propagator")
			}
			_ = tr.Shutdown(t.Context())
		})
	}
}
