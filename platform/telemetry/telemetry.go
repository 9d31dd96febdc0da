// Package telemetry is the process's OpenTelemetry tracing: off unless the
// standard OTEL_* variables ask for it, and then one tracer provider and
// one propagator (W3C trace context and baggage) for the whole process.
//
// OpenTelemetry's API keeps that provider process-wide, and the
// instrumentation libraries (otelhttp, otelgrpc) and platform/bus read it
// there; platform/app.Host installs it (Install), once, before any service
// starts. It is the one process-wide setting Sidekick has, like the Go
// runtime's memory limit.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidekickhq/sidekick/platform/config"
)

// Tracing is a tracer provider and its propagator.
type Tracing struct {
	Provider   trace.TracerProvider
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Propagator is W3C trace context (traceparent, tracestate) and baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Enabled reports whether environ asks for traces: OTEL_TRACES_EXPORTER
// set to an exporter (otlp, console), or an OTLP endpoint set, and
// OTEL_SDK_DISABLED not true.
func Enabled(environ []string) bool {
	env := config.Map(environ)
	if strings.EqualFold(env["OTEL_SDK_DISABLED"], "true") {
		return false
	}
	switch exp := env["OTEL_TRACES_EXPORTER"]; {
	case exp == "none":
		return false
	case exp != "":
		return true
	}
	return env["OTEL_EXPORTER_OTLP_ENDPOINT"] != "" || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != ""
}

// FromEnv is the tracing environ asks for, nil when it asks for none (the
// default). The exporter, its endpoint, headers and protocol, the sampler
// (OTEL_TRACES_SAMPLER) and resource attributes (OTEL_RESOURCE_ATTRIBUTES,
// OTEL_SERVICE_NAME, else service) are the OpenTelemetry SDK's standard
// variables, which the SDK reads itself.
func FromEnv(ctx context.Context, environ []string, service string) (*Tracing, error) {
	if !Enabled(environ) {
		return nil, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("opentelemetry: span exporter (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*): %w", err)
	}
	return New(ctx, service, sdktrace.WithBatcher(exp))
}

// New is tracing with a provider made of opts (an exporter: WithBatcher,
// WithSyncer) and a resource naming service.
func New(ctx context.Context, service string, opts ...sdktrace.TracerProviderOption) (*Tracing, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("opentelemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res)}, opts...)...)
	return &Tracing{Provider: tp, Propagator: Propagator(), shutdown: tp.Shutdown}, nil
}

// Install makes t the process's tracer provider and propagator.
func (t *Tracing) Install() {
	otel.SetTracerProvider(t.Provider)
	otel.SetTextMapPropagator(t.Propagator)
}

// Shutdown exports what is left and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}
