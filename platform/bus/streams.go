package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
// letters, no size limit, discard old messages first.
type StreamsConfig struct {
	// Replicas per stream; 3 on a production cluster.
	Replicas int
	// DuplicateWindow is how long a Nats-Msg-Id is remembered.
	DuplicateWindow time.Duration
	// MaxAge applies to every stream when set; 0 keeps the per-stream default.
	MaxAge time.Duration
	// MaxBytes limits each stream; 0 is unlimited.
	MaxBytes int64
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
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
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
			Discard:     jetstream.DiscardOld,
			MaxAge:      age,
			MaxBytes:    maxBytes,
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
