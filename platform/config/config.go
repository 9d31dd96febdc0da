// Package config loads service configuration from SIDEKICK_* environment
// variables into tagged structs (caarlos0/env tags: `env:"SIDEKICK_X,required"`,
// `envDefault:"…"`). The environment is passed in, never read from the
// process below main, so tests and the all-in-one dev stack can hand each
// service its own.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Load fills dst (a pointer to a struct) from environ, a list of KEY=VALUE
// strings as os.Environ returns. A missing required variable is an error that
// names it.
func Load(dst any, environ []string) error {
	if err := env.ParseWithOptions(dst, env.Options{Environment: Map(environ)}); err != nil {
		return explain(err, dst)
	}
	return nil
}

// LoadSettings is Load for a step that needs a service's settings but not
// its secrets (`<service> provision`, which makes streams and buckets): a
// required variable that is missing or empty is no error there.
func LoadSettings(dst any, environ []string) error {
	err := env.ParseWithOptions(dst, env.Options{Environment: Map(environ)})
	var agg env.AggregateError
	if errors.As(err, &agg) {
		var rest []error
		for _, e := range agg.Errors {
			var notSet env.VarIsNotSetError
			var empty env.EmptyVarError
			if !errors.As(e, &notSet) && !errors.As(e, &empty) {
				rest = append(rest, e)
			}
		}
		if len(rest) == 0 {
			return nil
		}
		agg.Errors = rest
		err = agg
	}
	if err != nil {
		return explain(err, dst)
	}
	return nil
}

// variableOf returns the environment variable behind the named field of
// dst's struct (env reports a value it cannot parse by field name), or the
// field name when it has no env tag.
func variableOf(dst any, field string) string {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return field
	}
	if sf, ok := t.FieldByName(field); ok {
		if name, _, _ := strings.Cut(sf.Tag.Get("env"), ","); name != "" {
			return name
		}
	}
	return field
}

// Map turns KEY=VALUE strings into a map; later entries win.
func Map(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

// explain rewrites env's aggregate error into one line per problem, each
// naming the variable, which is what an operator reading a crash-looping pod
// needs to see.
func explain(err error, dst any) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("configuration: %w", err)
	}
	var lines []string
	for _, e := range agg.Errors {
		var missing env.VarIsNotSetError
		var empty env.EmptyVarError
		var parse env.ParseError
		switch {
		case errors.As(e, &parse):
			lines = append(lines, fmt.Sprintf("environment variable %s: %v", variableOf(dst, parse.Name), parse.Err))
		case errors.As(e, &missing):
			lines = append(lines, fmt.Sprintf("required environment variable %s is not set", missing.Key))
		case errors.As(e, &empty):
			lines = append(lines, fmt.Sprintf("environment variable %s must not be empty", empty.Key))
		default:
			lines = append(lines, e.Error())
		}
	}
	return &Error{msg: "configuration: " + strings.Join(lines, "; "), err: err}
}

// Error is a configuration problem described by variable names; it wraps
// the underlying env error.
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.err }
