package ingestslack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// socketConcurrency bounds the envelopes handled at once.
const socketConcurrency = 32

// slogOutput adapts slog to the logger interface socketmode wants.
type slogOutput struct{ l *slog.Logger }

func (o slogOutput) Output(_ int, s string) error {
	o.l.Debug(s, "component", "socketmode")
	return nil
}

// runSocket receives events, interactions and commands over Socket Mode
// and feeds them to the same handlers as HTTP. An envelope is acknowledged
// only after its input was published (or deliberately dropped, or
// dead-lettered); when publishing fails it is left unacknowledged so
// Slack delivers it again.
func (s *Service) runSocket(ctx context.Context) error {
	client := socketmode.New(s.api, socketmode.OptionLog(slogOutput{s.deps.Logger}))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- client.RunContext(runCtx) }()

	sem := make(chan struct{}, socketConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("socket mode: %w", err)
		case evt := <-client.Events:
			req, ok := s.socketRequest(evt)
			if !ok {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Go(func() {
				defer func() { <-sem }()
				s.handleEnvelope(ctx, client, req)
			})
		}
	}
}

// socketRequest picks the envelopes to handle out of the client's events
// and logs the connection's life.
func (s *Service) socketRequest(evt socketmode.Event) (*socketmode.Request, bool) {
	switch evt.Type {
	case socketmode.EventTypeEventsAPI, socketmode.EventTypeInteractive, socketmode.EventTypeSlashCommand:
		return evt.Request, evt.Request != nil && evt.Request.EnvelopeID != ""
	case socketmode.EventTypeErrorBadMessage:
		// slack-go could not parse the payload into its own types; ours
		// are more forgiving, and the envelope must be answered anyway.
		if bad, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var req socketmode.Request
			if json.Unmarshal(bad.Message, &req) == nil && req.EnvelopeID != "" {
				return &req, true
			}
			s.deps.Logger.Warn("socket mode: unreadable message", "error", bad.Cause)
		}
	case socketmode.EventTypeConnected:
		s.deps.Logger.Info("socket mode connected")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError:
		s.deps.Logger.Warn("socket mode connection trouble", "data", fmt.Sprint(evt.Data))
	case socketmode.EventTypeInvalidAuth:
		s.deps.Logger.Error("socket mode: the app-level token was refused")
	}
	return nil, false
}

// handleEnvelope processes one Socket Mode request and acknowledges it.
func (s *Service) handleEnvelope(ctx context.Context, client *socketmode.Client, req *socketmode.Request) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	defer cancel()
	var (
		route string
		a     answer
	)
	switch req.Type {
	case socketmode.RequestTypeEventsAPI:
		route = routeSocketEvents
		if req.RetryAttempt > 0 {
			s.deps.Logger.Info("slack retried a delivery", "retry", req.RetryAttempt, "reason", req.RetryReason)
		}
		a = s.handleEvent(hctx, route, req.Payload)
	case socketmode.RequestTypeInteractive:
		route = routeSocketInter
		a = s.handleInteraction(hctx, route, req.Payload)
	case socketmode.RequestTypeSlashCommands:
		route = routeSocketCmds
		var cmd slack.SlashCommand
		if err := json.Unmarshal(req.Payload, &cmd); err != nil || cmd.Command == "" {
			s.metrics.events.WithLabelValues("command", "malformed").Inc()
			a = failure(http.StatusBadRequest, "want a slash command")
		} else {
			a = s.handleCommand(hctx, cmd)
		}
	default:
		s.deps.Logger.Warn("socket mode: unknown envelope type", "type", req.Type)
		a = failure(http.StatusBadRequest, "unknown envelope type")
		route = "socket_other"
	}
	s.metrics.requests.WithLabelValues(route, strconv.Itoa(a.code)).Inc()
	if a.retryable() {
		// No ack: Slack redelivers the envelope.
		return
	}
	var payload any
	if route == routeSocketCmds && a.code == http.StatusOK {
		payload = a.body
	}
	if err := client.AckCtx(hctx, req.EnvelopeID, payload); err != nil && !errors.Is(err, context.Canceled) {
		s.deps.Logger.Warn("socket mode: ack failed", "envelope", req.EnvelopeID, "error", err)
	}
}
