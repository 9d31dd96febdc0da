package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/sidekickhq/sidekick/platform/bus"
	// Register every Sidekick message type so events decode by ce-type.
	_ "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	_ "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	_ "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	_ "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// eventLine is one line of `sidekick events tail --json`.
type eventLine struct {
	Stream        string          `json:"stream"`
	Sequence      uint64          `json:"sequence"`
	Subject       string          `json:"subject"`
	ID            string          `json:"id,omitempty"`
	Type          string          `json:"type,omitempty"`
	Source        string          `json:"source,omitempty"`
	Time          string          `json:"time,omitempty"`
	ErrorLocation string          `json:"error_location,omitempty"`
	Error         string          `json:"error,omitempty"`
	Data          json.RawMessage `json:"data"`
}

func (r *root) eventsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Read Sidekick's event streams"}
	var (
		subject string
		count   int
		timeout time.Duration
		since   string
		asJSON  bool
	)
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print a stream's events from the first (or --since), then follow",
		Long: `Print events from the JetStream streams whose subjects match --subject
(default support.>: every Sidekick stream), from the first message or from
--since (an RFC 3339 time or a duration such as 10m), then follow new ones
until --count events were printed or --timeout passed without reaching it.
With --json each event is one line: stream, sequence, subject, CloudEvents id,
type, source and time, and the payload as protobuf JSON in "data".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Time{}
			if since != "" {
				if d, err := time.ParseDuration(since); err == nil {
					start = time.Now().Add(-d)
				} else if t, err := parseTime(since); err == nil {
					start = t
				} else {
					return fmt.Errorf("--since %q: want a duration (10m) or a time (RFC 3339)", since)
				}
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			opts, err := r.natsOptions()
			if err != nil {
				return err
			}
			n, err := tailEvents(ctx, r.natsURL, opts, subject, start, count, func(l eventLine) error {
				if asJSON {
					return writeJSONLine(r.io.Stdout, l)
				}
				_, err := fmt.Fprintf(r.io.Stdout, "%s #%d %s %s %s\n", l.Stream, l.Sequence, l.Subject, l.ID, l.Data)
				return err
			})
			if err != nil {
				return err
			}
			if count > 0 && n < count {
				return fmt.Errorf("timed out after %s with %d of %d events", timeout, n, count)
			}
			return nil
		},
	}
	f := tail.Flags()
	f.StringVar(&subject, "subject", "support.>", "subject filter, e.g. support.conversation.opened")
	f.IntVar(&count, "count", 0, "stop after this many events (0: follow until --timeout or Ctrl-C)")
	f.DurationVar(&timeout, "timeout", 0, "stop after this long (0: no limit)")
	f.StringVar(&since, "since", "", "start at this time or this long ago instead of the first event")
	f.BoolVar(&asJSON, "json", false, "one JSON object per line")
	cmd.AddCommand(tail)
	return cmd
}

// tailEvents follows every stream whose subjects overlap subject with an
// ordered consumer and calls emit per message until count messages were
// emitted or ctx ends. It returns how many were emitted.
func tailEvents(ctx context.Context, url string, opts []nats.Option, subject string, since time.Time, count int, emit func(eventLine) error) (int, error) {
	nc, err := nats.Connect(url, append(opts, nats.Name("sidekick-cli"))...)
	if err != nil {
		return 0, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("jetstream: %w", err)
	}
	names := js.StreamNames(ctx, jetstream.WithStreamListSubject(subject))
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	if err := names.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("find streams for %s: %w", subject, err)
	}
	if len(streams) == 0 {
		return 0, fmt.Errorf("no stream holds subject %s", subject)
	}
	msgs := make(chan jetstream.Msg)
	for _, name := range streams {
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy}
		if !since.IsZero() {
			cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
			cfg.OptStartTime = &since
		}
		cons, err := js.OrderedConsumer(ctx, name, cfg)
		if err != nil {
			return 0, fmt.Errorf("consume %s: %w", name, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			select {
			case msgs <- m:
			case <-ctx.Done():
			}
		})
		if err != nil {
			return 0, fmt.Errorf("consume %s: %w", name, err)
		}
		defer cc.Stop()
	}
	n := 0
	for count == 0 || n < count {
		select {
		case <-ctx.Done():
			return n, nil
		case m := <-msgs:
			if err := emit(toEventLine(m)); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func toEventLine(m jetstream.Msg) eventLine {
	h := m.Headers()
	l := eventLine{
		Subject: m.Subject(), ID: h.Get(bus.HeaderID), Type: h.Get(bus.HeaderType), Source: h.Get(bus.HeaderSource),
		Time: h.Get(bus.HeaderTime), ErrorLocation: h.Get(bus.HeaderErrorLocation), Error: h.Get(bus.HeaderError),
	}
	if md, err := m.Metadata(); err == nil {
		l.Stream, l.Sequence = md.Stream, md.Sequence.Stream
	}
	l.Data = decodePayload(l.Type, m.Data())
	return l
}

// decodePayload renders a protobuf payload as JSON using its ce-type, or as
// a JSON string of the raw bytes when the type is unknown.
func decodePayload(typ string, data []byte) json.RawMessage {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err == nil {
		m := mt.New().Interface()
		if err := proto.Unmarshal(data, m); err == nil {
			if b, err := (protojson.MarshalOptions{UseProtoNames: true}).Marshal(m); err == nil {
				return b
			}
		}
	}
	b, _ := json.Marshal(string(data))
	return b
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
