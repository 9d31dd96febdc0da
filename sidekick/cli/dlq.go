package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/grpcx"
)

// deadLetter is one entry of the dead-letter stream.
type deadLetter struct {
	Sequence        uint64 `json:"sequence"`
	Time            string `json:"time"`
	Service         string `json:"service"`
	ErrorLocation   string `json:"error_location"`
	Error           string `json:"error"`
	OriginalSubject string `json:"original_subject,omitempty"`
	OriginalStream  string `json:"original_stream,omitempty"`
	OriginalSeq     string `json:"original_sequence,omitempty"`
	Deliveries      string `json:"delivery_count,omitempty"`
	ID              string `json:"id,omitempty"`
	Type            string `json:"type,omitempty"`
	Size            int    `json:"size"`

	msg *jetstream.RawStreamMsg
}

func (r *root) dlqCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay the dead-letter stream",
		Long: `Everything Sidekick could not process lands in SUPPORT_DEADLETTER on
support.deadletter.<service>, with the place (error_location) and the reason
(error). 'dlq list' shows it; 'dlq replay' publishes entries again on their
original subject (after you fixed the cause) and removes them from the
dead-letter stream. A provider's raw request that an ingest service could
not turn into a message goes back through that service's normaliser (the
service must be running); what cannot be replayed is kept and named with
the reason, and the command then exits non-zero.`,
	}
	var (
		service string
		asJSON  bool
		limit   int
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, nc, err := r.jetstream()
			if err != nil {
				return err
			}
			defer nc.Close()
			entries, err := listDeadLetters(cmd.Context(), js, service, limit)
			if err != nil {
				return err
			}
			if asJSON {
				for _, e := range entries {
					if err := writeJSONLine(r.io.Stdout, e); err != nil {
						return err
					}
				}
				return nil
			}
			if len(entries) == 0 {
				fmt.Fprintln(r.io.Stdout, "the dead-letter stream is empty")
				return nil
			}
			tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tSERVICE\tLOCATION\tSUBJECT\tERROR")
			for _, e := range entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Sequence, e.Time, e.Service, e.ErrorLocation, e.OriginalSubject, truncate(e.Error, 80))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&service, "service", "", "only this service's dead letters")
	list.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	list.Flags().IntVar(&limit, "limit", 1000, "at most this many")

	var (
		all  bool
		keep bool
	)
	replay := &cobra.Command{
		Use:   "replay [SEQ ...] | --all [--service S]",
		Short: "Publish dead letters again on their original subject",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return errors.New("name dead-letter sequences, or --all (optionally with --service)")
			}
			js, nc, err := r.jetstream()
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx := cmd.Context()
			var entries []deadLetter
			if all {
				if entries, err = listDeadLetters(ctx, js, service, 0); err != nil {
					return err
				}
			} else {
				for _, a := range args {
					seq, err := strconv.ParseUint(a, 10, 64)
					if err != nil {
						return fmt.Errorf("sequence %q: %w", a, err)
					}
					e, err := getDeadLetter(ctx, js, seq)
					if err != nil {
						return err
					}
					entries = append(entries, e)
				}
			}
			n, refused, err := replayDeadLetters(ctx, js, entries, keep, r.timeout)
			for _, rf := range refused {
				fmt.Fprintf(r.io.Stdout, "not replayed %d: %s\n", rf.seq, rf.reason)
			}
			fmt.Fprintf(r.io.Stdout, "replayed %d of %d dead letter(s)\n", n, len(entries))
			if err == nil && len(refused) > 0 {
				err = fmt.Errorf("%d dead letter(s) cannot be replayed (kept in %s)", len(refused), bus.StreamDeadLetter)
			}
			return err
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter (of --service, if given)")
	replay.Flags().StringVar(&service, "service", "", "with --all: only this service's dead letters")
	replay.Flags().BoolVar(&keep, "keep", false, "keep the entries in the dead-letter stream after replaying")
	cmd.AddCommand(list, replay)
	return cmd
}

func (r *root) jetstream() (jetstream.JetStream, *nats.Conn, error) {
	opts, err := r.natsOptions()
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(r.natsURL, append(opts, nats.Name("sidekick-cli"))...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", bus.RedactURL(r.natsURL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nc, nil
}

func toDeadLetter(m *jetstream.RawStreamMsg) deadLetter {
	h := m.Header
	return deadLetter{
		Sequence: m.Sequence, Time: m.Time.UTC().Format(time.RFC3339),
		Service:       strings.TrimPrefix(m.Subject, "support.deadletter."),
		ErrorLocation: h.Get(bus.HeaderErrorLocation), Error: h.Get(bus.HeaderError),
		OriginalSubject: h.Get(bus.HeaderOriginalSubject), OriginalStream: h.Get(bus.HeaderOriginalStream),
		OriginalSeq: h.Get(bus.HeaderOriginalSequence), Deliveries: h.Get(bus.HeaderDeliveryCount),
		ID: h.Get(bus.HeaderID), Type: h.Get(bus.HeaderType), Size: len(m.Data), msg: m,
	}
}

func getDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (deadLetter, error) {
	s, err := js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		return deadLetter{}, fmt.Errorf("open %s: %w", bus.StreamDeadLetter, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return deadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return toDeadLetter(m), nil
}

// listDeadLetters reads the dead-letter stream without consuming it.
func listDeadLetters(ctx context.Context, js jetstream.JetStream, service string, limit int) ([]deadLetter, error) {
	s, err := js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", bus.StreamDeadLetter, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	var out []deadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	subject := "support.deadletter.>"
	if service != "" {
		subject = bus.DeadLetterSubject(service)
	}
	seq := info.State.FirstSeq
	for seq <= info.State.LastSeq && (limit <= 0 || len(out) < limit) {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		out = append(out, toDeadLetter(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// refusal is a dead letter that cannot be replayed, and why.
type refusal struct {
	seq    uint64
	reason string
}

// replayable says why e cannot be replayed at all, or "".
func replayable(e deadLetter) string {
	h := e.msg.Header
	switch {
	case h.Get(bus.HeaderDataOmitted) != "":
		return fmt.Sprintf("its data (%s bytes) was too large to keep in the dead letter; have the provider send it again", h.Get(bus.HeaderDataOmitted))
	case h.Get(bus.HeaderRawRequest) != "":
		return ""
	case e.OriginalSubject == "":
		return "it has no original subject to replay to"
	case strings.HasPrefix(e.OriginalSubject, "support.inbound.") && h.Get(bus.HeaderType) == "":
		// An ingest service's raw provider request from before dead
		// letters were marked: republished as it is, triage would only
		// dead-letter it again.
		return fmt.Sprintf("it is %s's raw provider request, not a message, and carries no %s to replay it through %s's normaliser; have the provider send it again",
			e.Service, bus.HeaderRawRequest, e.Service)
	}
	return ""
}

// replayDeadLetters replays each entry and removes it from the
// dead-letter stream unless keep; what cannot be replayed is kept and
// returned with the reason.
//
// A provider's raw request (header raw_request, written by an ingest
// service) goes back through that service's normaliser: a request on
// bus.ReplaySubject, answered by the running service (within timeout),
// which publishes what it makes or says why it cannot. Anything else is
// published with its original headers (minus the dead-letter ones) on its
// original subject. The Nats-Msg-Id names the dead letter, so replaying
// the same entry twice within the duplicate window stores it once, while
// the original id (already seen by JetStream) does not block it.
func replayDeadLetters(ctx context.Context, js jetstream.JetStream, entries []deadLetter, keep bool, timeout time.Duration) (int, []refusal, error) {
	s, err := js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		return 0, nil, fmt.Errorf("open %s: %w", bus.StreamDeadLetter, err)
	}
	n := 0
	var refused []refusal
	for _, e := range entries {
		if why := replayable(e); why != "" {
			refused = append(refused, refusal{e.Sequence, why})
			continue
		}
		if raw := e.msg.Header.Get(bus.HeaderRawRequest); raw != "" {
			rctx, cancel := context.WithTimeout(ctx, timeout)
			err := bus.RequestReplay(rctx, js.Conn(), raw, e.msg.Data, e.msg.Header)
			cancel()
			if err != nil {
				refused = append(refused, refusal{e.Sequence, err.Error()})
				continue
			}
		} else {
			h := nats.Header{}
			for k, v := range e.msg.Header {
				switch k {
				case bus.HeaderErrorLocation, bus.HeaderError, bus.HeaderOriginalSubject, bus.HeaderOriginalStream,
					bus.HeaderOriginalSequence, bus.HeaderDeliveryCount, jetstream.MsgIDHeader:
					continue
				}
				h[k] = v
			}
			h.Set(jetstream.MsgIDHeader, fmt.Sprintf("replay-%d-%s", e.Sequence, e.msg.Header.Get(jetstream.MsgIDHeader)))
			if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: e.OriginalSubject, Header: h, Data: e.msg.Data}); err != nil {
				return n, refused, fmt.Errorf("replay dead letter %d to %s: %w", e.Sequence, e.OriginalSubject, err)
			}
		}
		if !keep {
			if err := s.DeleteMsg(ctx, e.Sequence); err != nil {
				return n, refused, fmt.Errorf("remove replayed dead letter %d: %w", e.Sequence, err)
			}
		}
		n++
	}
	return n, refused, nil
}

// natsOptions authenticate the CLI to NATS and verify the servers' TLS
// certificates, as SIDEKICK_NATS_NKEY_SEED (or SIDEKICK_NATS_CREDS) and
// SIDEKICK_NATS_TLS_CA say.
func (r *root) natsOptions() ([]nats.Option, error) {
	a := bus.ClientAuth{NKeySeedFile: r.env.NATSNKeySeed, CredsFile: r.env.NATSCreds}
	if r.env.NATSTLSCA != "" {
		t, err := grpcx.LoadTLS(grpcx.TLSFiles{CA: r.env.NATSTLSCA}, nil)
		if err != nil {
			return nil, fmt.Errorf("SIDEKICK_NATS_TLS_CA: %w", err)
		}
		a.TLS, a.RootCAs = t.ClientConfig(), t.ClientRoots()
	}
	opts, err := a.Options()
	if err != nil {
		return nil, fmt.Errorf("SIDEKICK_NATS_NKEY_SEED, SIDEKICK_NATS_CREDS: %w", err)
	}
	return opts, nil
}
