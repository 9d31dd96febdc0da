package telemetry

import "testing"

// TestOffByDefault: tracing is on only when the OTEL_* variables ask for
// an exporter, and OTEL_SDK_DISABLED turns it off whatever else is set.
func TestOffByDefault(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{nil, false},
		{[]string{"OTEL_SERVICE_NAME=triage"}, false},
		{[]string{"OTEL_TRACES_EXPORTER=none", "OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"}, false},
		{[]string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318"}, true},
		{[]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://collector:4318/v1/traces"}, true},
		{[]string{"OTEL_TRACES_EXPORTER=console"}, true},
		{[]string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_SDK_DISABLED=true"}, false},
	} {
		if got := Enabled(tc.env); got != tc.want {
			t.Errorf("%v: enabled %v, want %v", tc.env, got, tc.want)
		}
	}
}
