package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/promreg"
)

// Default stream limits.
const (
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultEventMaxAge     = 30 * 24 * time.Hour
	DefaultDeadLetterAge   = 90 * 24 * time.Hour
)

// StreamsConfig tunes provisioning; zero values mean sensible defaults:
// one replica, file storage, a duplicate window of DefaultDuplicateWindow,
// DefaultEventMaxAge for event streams and DefaultDeadLetterAge for dead
// letters, no size limit.
//
// A full stream refuses new messages (DiscardNew) instead of dropping its
// oldest ones: the oldest may not have been consumed yet (a consumer that
// is down is exactly what fills a stream), and every publisher retries a
// refused publish: ingest answers 503 so the sender retries, the outboxes
// keep the event, a dead letter that cannot be stored is redelivered. Age
// still removes messages whatever the size.
type StreamsConfig struct {
	// Replicas per stream; 3 on a production cluster.
	Replicas int
	// DuplicateWindow is how long a Nats-Msg-Id is remembered.
	DuplicateWindow time.Duration
	// MaxAge applies to every stream when set; 0 keeps the per-stream default.
	MaxAge time.Duration
	// MaxBytes limits each stream not named in StreamMaxBytes; 0 is
	// unlimited.
	MaxBytes int64
	// StreamMaxBytes limits the named streams (stream name to bytes),
	// overriding MaxBytes; see ParseStreamMaxBytes.
	StreamMaxBytes map[string]int64
}

// maxBytes is the byte limit of one stream, -1 for none (JetStream's
// "unlimited").
func (c StreamsConfig) maxBytes(stream string) int64 {
	n := c.MaxBytes
	if v, ok := c.StreamMaxBytes[stream]; ok {
		n = v
	}
	if n <= 0 {
		return -1
	}
	return n
}

// ParseStreamMaxBytes parses per-stream byte limits written as
// "SUPPORT_INBOUND=4GiB,SUPPORT_DEADLETTER=512MiB": a stream name, "=", and
// a size in bytes with an optional KiB, MiB, GiB or TiB suffix (0 means no
// limit). A stream that is not one of Sidekick's is an error, so a typo
// does not leave a stream unlimited.
func ParseStreamMaxBytes(s string) (map[string]int64, error) {
	out := map[string]int64{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, size, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("stream limit %q: want STREAM=SIZE", item)
		}
		if !slices.ContainsFunc(streamSpecs(), func(s streamSpec) bool { return s.name == name }) {
			return nil, fmt.Errorf("stream limit %q: no stream %s", item, name)
		}
		n, err := parseBytes(strings.TrimSpace(size))
		if err != nil {
			return nil, fmt.Errorf("stream limit %q: %w", item, err)
		}
		out[name] = n
	}
	return out, nil
}

func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for i, suffix := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if strings.HasSuffix(s, suffix) {
			mult = 1 << (10 * (i + 1))
			s = strings.TrimSpace(strings.TrimSuffix(s, suffix))
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, KiB, MiB, GiB or TiB", s)
	}
	return n * mult, nil
}

// RegisterStreamLimits publishes the configured byte limit of each limited
// stream as sidekick_bus_stream_max_bytes{stream}: the NATS exporter
// reports a stream's size but not its limit, and the alert that warns
// before a stream is full needs both.
func RegisterStreamLimits(reg prometheus.Registerer, c StreamsConfig) error {
	for _, s := range streamSpecs() {
		if err := RegisterStreamLimit(reg, s.name, c.maxBytes(s.name)); err != nil {
			return err
		}
	}
	return nil
}

// RegisterStreamLimit publishes the byte limit of one more stream, such as
// the stream of a key-value bucket (KV_<bucket>), beside those of
// RegisterStreamLimits; n <= 0 (unlimited) publishes nothing.
func RegisterStreamLimit(reg prometheus.Registerer, stream string, n int64) error {
	g, err := promreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sidekick_bus_stream_max_bytes",
		Help: "Byte limit of a JetStream stream as this service provisions it; absent for an unlimited stream.",
	}, []string{"stream"}))
	if err != nil {
		return err
	}
	if n > 0 {
		g.WithLabelValues(stream).Set(float64(n))
	}
	return nil
}

type streamSpec struct {
	name, subjects, description string
	maxAge                      time.Duration
}

func streamSpecs() []streamSpec {
	return []streamSpec{
		{StreamInbound, subjectInbound + ">", "Normalized inbound support messages, one subject per channel", DefaultEventMaxAge},
		{StreamConversations, subjectConversation + ">", "Conversation events for any subscriber", DefaultEventMaxAge},
		{StreamActions, subjectAction + ">", "What people did from Slack, the CLI or the console", DefaultEventMaxAge},
		{StreamRotation, subjectRotation + ">", "Schedule events: handoffs, overrides, coverage gaps", DefaultEventMaxAge},
		{StreamNotify, subjectNotify + ">", "Notification delivery log events", DefaultEventMaxAge},
		{StreamOutbound, subjectOutbound + ">", "Replies to customers to send, one subject per channel, and their receipts", DefaultEventMaxAge},
		{StreamDeadLetter, subjectDeadLetter + ">", "Input that could not be processed, with error_location and error", DefaultDeadLetterAge},
	}
}

// StreamConfigs returns the configuration of every Sidekick stream.
func StreamConfigs(c StreamsConfig) []jetstream.StreamConfig {
	replicas := c.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	specs := streamSpecs()
	out := make([]jetstream.StreamConfig, 0, len(specs))
	for _, s := range specs {
		age := s.maxAge
		if c.MaxAge > 0 {
			age = c.MaxAge
		}
		dup := c.DuplicateWindow
		if dup <= 0 {
			dup = DefaultDuplicateWindow
		}
		if dup > age {
			dup = age
		}
		out = append(out, jetstream.StreamConfig{
			Name:        s.name,
			Description: s.description,
			Subjects:    []string{s.subjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			Discard:     jetstream.DiscardNew,
			MaxAge:      age,
			MaxBytes:    c.maxBytes(s.name),
			Duplicates:  dup,
		})
	}
	return out
}

// Provision creates or updates every stream; running it twice changes
// nothing. A stream whose settings already match is left untouched, so
// Provision is cheap at every service start.
func Provision(ctx context.Context, js jetstream.JetStream, c StreamsConfig) error {
	_, err := provision(ctx, js, c)
	return err
}

// ErrStreamsNotProvisioned is returned by Check for a stream that is
// missing or whose settings differ from what this version provisions.
var ErrStreamsNotProvisioned = errors.New("streams not provisioned")

// Check verifies that every stream exists with the settings Provision
// would give it, changing nothing: what a service does at start when its
// NATS user may read streams but not create or change them.
func Check(ctx context.Context, js jetstream.JetStream, c StreamsConfig) error {
	var bad []string
	for _, want := range StreamConfigs(c) {
		s, err := js.Stream(ctx, want.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			bad = append(bad, want.Name+" is missing")
		case err != nil:
			return fmt.Errorf("get stream %s: %w", want.Name, err)
		case !sameStreamConfig(s.CachedInfo().Config, want):
			bad = append(bad, want.Name+" has other settings")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrStreamsNotProvisioned, strings.Join(bad, ", "))
	}
	return nil
}

// provision returns the names of the streams it created or updated.
func provision(ctx context.Context, js jetstream.JetStream, c StreamsConfig) ([]string, error) {
	var changed []string
	for _, want := range StreamConfigs(c) {
		s, err := js.Stream(ctx, want.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if _, err := js.CreateStream(ctx, want); err != nil {
				if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
					return changed, fmt.Errorf("create stream %s: %w", want.Name, err)
				}
				// Another service created it in the meantime: check it below.
				if s, err = js.Stream(ctx, want.Name); err != nil {
					return changed, fmt.Errorf("get stream %s: %w", want.Name, err)
				}
			} else {
				changed = append(changed, want.Name)
				continue
			}
		case err != nil:
			return changed, fmt.Errorf("get stream %s: %w", want.Name, err)
		}
		have := s.CachedInfo().Config
		if sameStreamConfig(have, want) {
			continue
		}
		if have.Storage != want.Storage {
			return changed, fmt.Errorf("update stream %s: storage is %s, want %s: a stream's storage cannot change, migrate it by hand", want.Name, have.Storage, want.Storage)
		}
		if _, err := js.UpdateStream(ctx, want); err != nil {
			return changed, fmt.Errorf("update stream %s: %w", want.Name, err)
		}
		changed = append(changed, want.Name)
	}
	return changed, nil
}

// sameStreamConfig compares the settings Provision controls; the server
// fills in others with its defaults.
func sameStreamConfig(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description &&
		slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention &&
		have.Storage == want.Storage &&
		have.Replicas == want.Replicas &&
		have.Discard == want.Discard &&
		have.MaxAge == want.MaxAge &&
		have.MaxBytes == want.MaxBytes &&
		have.Duplicates == want.Duplicates
}
