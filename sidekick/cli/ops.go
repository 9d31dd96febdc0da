package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/sidekick/internal/githubredeliver"
)

// opEnv is the rest of the environment the operator commands read: who is
// acting, the time zone tables are printed in, and GitHub access for
// `sidekick github redeliver`.
type opEnv struct {
	User         string `env:"USER"`
	TZ           string `env:"TZ"`
	GitHubToken  string `env:"SIDEKICK_GITHUB_TOKEN"`
	GitHubAPIURL string `env:"SIDEKICK_GITHUB_API_URL"`
}

// opEnv reads opEnv from the IO environment (never the process's).
func (r *root) opEnv() opEnv {
	var e opEnv
	// Every field is an optional string: Load cannot fail on this struct.
	_ = config.Load(&e, r.io.Environ)
	if e.GitHubAPIURL == "" {
		e.GitHubAPIURL = githubredeliver.DefaultBaseURL
	}
	return e
}

// location is where tables show times: TZ from the IO environment when it
// names a zone, else the process's local zone.
func (r *root) location() *time.Location {
	if tz := strings.TrimPrefix(r.opEnv().TZ, ":"); tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			return loc
		}
	}
	return time.Local
}

// fmtTime renders a timestamp for a table, with its zone, or "-" when unset.
func fmtTime(ts *timestamppb.Timestamp, loc *time.Location) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().In(loc).Format("2006-01-02 15:04 MST")
}

// actorFlag adds --actor to cmd, defaulting to $USER of the IO environment.
func (r *root) actorFlag(cmd *cobra.Command, actor *string) {
	cmd.Flags().StringVar(actor, "actor", r.opEnv().User, "who is acting, for the audit trail (taken from $USER)")
}

// requireActor returns the trimmed actor, or an error when there is none.
func requireActor(actor string) (string, error) {
	if a := strings.TrimSpace(actor); a != "" {
		return a, nil
	}
	return "", errors.New("--actor is required ($USER is not set)")
}

// rpc dials Sidekick, bounds one call with --rpc-timeout and runs fn; a
// failure is reported as the step plus a readable gRPC status.
func (r *root) rpc(ctx context.Context, step string, fn func(context.Context, grpc.ClientConnInterface) error) error {
	cc, err := r.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := r.call(ctx)
	defer cancel()
	if err := fn(ctx, cc); err != nil {
		return r.callError(step, err)
	}
	return nil
}

// callError is a failed RPC: the step, and the status in words, with a hint
// for the mistakes operators make most (no token, wrong address, the
// address of another service).
type callError struct {
	step string
	hint string
	st   *status.Status
	err  error
}

func (e *callError) Error() string {
	msg := fmt.Sprintf("%s: %s: %s", e.step, codeText(e.st.Code()), e.st.Message())
	if e.hint != "" {
		msg += " (" + e.hint + ")"
	}
	return msg
}

func (e *callError) Unwrap() error { return e.err }

// GRPCStatus lets status.FromError see through the wrapper.
func (e *callError) GRPCStatus() *status.Status { return e.st }

func (r *root) callError(step string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", step, err)
	}
	e := &callError{step: step, st: st, err: err}
	switch st.Code() {
	case codes.Unauthenticated:
		e.hint = "set SIDEKICK_GRPC_TOKEN to the token the servers expect"
	case codes.Unavailable:
		e.hint = "is Sidekick running at " + r.addr + "? see --addr and SIDEKICK_ADDR"
		switch {
		case strings.Contains(st.Message(), "tls:") || strings.Contains(st.Message(), "x509:"):
			e.hint = "TLS failed: see --tls-ca, --tls-cert, --tls-key and --tls-server-name"
		case !r.tls.Enabled() && strings.Contains(st.Message(), "server preface"):
			e.hint += "; if the servers use TLS, set --tls-ca (and --tls-cert, --tls-key for mTLS)"
		}
	case codes.Unimplemented:
		if strings.Contains(st.Message(), "unknown service") {
			e.hint = r.addr + " does not serve it: triage, rotation and notifier each have their own address outside 'sidekick dev'"
		}
	}
	return e
}

// codeText turns a gRPC code into words: NotFound → "not found".
func codeText(c codes.Code) string {
	var b strings.Builder
	for i, ch := range c.String() {
		if i > 0 && ch >= 'A' && ch <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(ch)
	}
	return strings.ToLower(b.String())
}

// readText returns s, or standard input when s is "-", trimmed.
func (r *root) readText(s string) (string, error) {
	if s != "-" {
		return s, nil
	}
	b, err := io.ReadAll(r.io.Stdin)
	if err != nil {
		return "", fmt.Errorf("read standard input: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readInput reads a file, or standard input for "-".
func (r *root) readInput(name string) ([]byte, error) {
	if name == "-" {
		if r.io.Stdin == nil {
			return nil, errors.New("no standard input")
		}
		b, err := io.ReadAll(r.io.Stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// fmtSeconds renders a duration in seconds compactly: 45s, 12m30s, 26h05m.
func fmtSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		m, sec := int(d/time.Minute), int(d%time.Minute/time.Second)
		if sec == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%02ds", m, sec)
	default:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

// fmtDollars renders cents as "$1,234" or "$1,234.50".
func fmtDollars(cents int64) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	whole := fmt.Sprint(cents / 100)
	var b strings.Builder
	for i, ch := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	out := "$" + b.String()
	if frac := cents % 100; frac != 0 {
		out += fmt.Sprintf(".%02d", frac)
	}
	if neg {
		out = "-" + out
	}
	return out
}

// joinOr renders a list for a table, "-" when empty.
func joinOr(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ", ")
}
