package ingestslack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackevent"
)

// Action ids of the buttons the notifier puts on its Slack messages and
// of the support-channel mirror's header; a click becomes a
// supportv1.Action on support.action.<ack|escalate|close|assign>. Assign
// assigns the conversation to whoever clicked.
const (
	ActionAck      = "sidekick_ack"
	ActionEscalate = "sidekick_escalate"
	ActionClose    = "sidekick_close"
	ActionAssign   = "sidekick_assign"
)

var actionTypes = map[string]struct {
	typ     supportv1.ActionType
	subject string
}{
	ActionAck:      {supportv1.ActionType_ACTION_TYPE_ACK, "ack"},
	ActionEscalate: {supportv1.ActionType_ACTION_TYPE_ESCALATE, "escalate"},
	ActionClose:    {supportv1.ActionType_ACTION_TYPE_CLOSE, "close"},
	ActionAssign:   {supportv1.ActionType_ACTION_TYPE_ASSIGN, "assign"},
}

// ButtonValue is the value of a Sidekick button:
// "conv:<conversation id>|notif:<notification id>", or
// "conv:<conversation id>" when the button belongs to no notification.
// Ids must not contain '|'.
func ButtonValue(conversationID, notificationID string) string {
	if notificationID == "" {
		return "conv:" + conversationID
	}
	return "conv:" + conversationID + "|notif:" + notificationID
}

// ErrButtonValue is returned by ParseButtonValue for a value it cannot read.
var ErrButtonValue = errors.New("bad sidekick button value")

// ParseButtonValue reads a button value written by ButtonValue. A bare
// value without prefixes is taken as a conversation id. At least one of
// the ids is set when err is nil.
func ParseButtonValue(v string) (conversationID, notificationID string, err error) {
	if v == "" {
		return "", "", fmt.Errorf("%w: empty", ErrButtonValue)
	}
	if !strings.Contains(v, ":") {
		return v, "", nil
	}
	for part := range strings.SplitSeq(v, "|") {
		key, id, found := strings.Cut(part, ":")
		if !found || id == "" {
			return "", "", fmt.Errorf("%w: %q", ErrButtonValue, v)
		}
		switch key {
		case "conv":
			if conversationID != "" {
				return "", "", fmt.Errorf("%w: two conversation ids in %q", ErrButtonValue, v)
			}
			conversationID = id
		case "notif":
			if notificationID != "" {
				return "", "", fmt.Errorf("%w: two notification ids in %q", ErrButtonValue, v)
			}
			notificationID = id
		default:
			return "", "", fmt.Errorf("%w: unknown part %q in %q", ErrButtonValue, key, v)
		}
	}
	return conversationID, notificationID, nil
}

// interaction is the part of a block_actions payload Sidekick reads.
type interaction struct {
	Type      string `json:"type"`
	APIAppID  string `json:"api_app_id"`
	TriggerID string `json:"trigger_id"`
	Team      struct {
		ID     string `json:"id"`
		Domain string `json:"domain"`
	} `json:"team"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Name     string `json:"name"`
		TeamID   string `json:"team_id"`
	} `json:"user"`
	Actions []struct {
		ActionID string `json:"action_id"`
		BlockID  string `json:"block_id"`
		Type     string `json:"type"`
		Value    string `json:"value"`
		ActionTS string `json:"action_ts"`
	} `json:"actions"`
}

// serveInteractions handles POST /slack/interactions: a form with one
// field, payload, holding the JSON.
func (s *Service) serveInteractions(w http.ResponseWriter, r *http.Request) {
	body, verified := s.readVerified(w, r, routeInteractions, "interaction", nil)
	if !verified {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		s.metrics.events.WithLabelValues("interaction", "malformed").Inc()
		s.reply(w, routeInteractions, failure(http.StatusBadRequest, "want a form with a payload field"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	s.reply(w, routeInteractions, s.handleInteraction(ctx, routeInteractions, []byte(form.Get("payload"))))
}

// handleInteraction publishes the Sidekick button clicks of an interaction
// payload, from HTTP or Socket Mode.
func (s *Service) handleInteraction(ctx context.Context, route string, payload []byte) answer {
	var in interaction
	if err := json.Unmarshal(payload, &in); err != nil || in.Type == "" {
		s.metrics.events.WithLabelValues("interaction", "malformed").Inc()
		return failure(http.StatusBadRequest, "interaction payload is not JSON with a type")
	}
	if in.Type != "block_actions" {
		s.metrics.events.WithLabelValues("interaction", "ignored_type").Inc()
		return accepted()
	}
	recognized := 0
	for _, a := range in.Actions {
		kind, known := actionTypes[a.ActionID]
		if !known {
			continue
		}
		recognized++
		label := "block_actions"
		subject := bus.ActionSubject(kind.subject)
		conv, notif, err := ParseButtonValue(a.Value)
		if err == nil && in.User.ID == "" {
			err = errors.New("block_actions without user.id")
		}
		if err == nil && a.ActionTS == "" {
			err = errors.New("block_actions action without action_ts")
		}
		if err != nil {
			hdr := nats.Header{}
			hdr.Set("slack-action-id", a.ActionID)
			if res := s.deadLetter(ctx, label, route, subject, payload, hdr, err); res.retryable() {
				return res
			}
			continue
		}
		at, terr := slackevent.ParseTS(a.ActionTS)
		if terr != nil {
			at = s.deps.Now()
		}
		act := &supportv1.Action{
			Id:             "slack:action/" + in.Team.ID + "/" + in.User.ID + "/" + a.ActionTS + "/" + a.ActionID,
			Type:           kind.typ,
			ConversationId: conv,
			NotificationId: notif,
			Actor:          in.User.ID,
			Source:         "slack",
			OccurredAt:     timestamppb.New(at),
		}
		if kind.typ == supportv1.ActionType_ACTION_TYPE_ASSIGN {
			// "Assign to me": triage maps the Slack user to their person.
			act.Assignee = in.User.ID
		}
		ack, err := s.deps.Publisher.Publish(ctx, bus.Event{Subject: subject, ID: act.GetId(), Time: at, Message: act})
		if err != nil {
			s.metrics.events.WithLabelValues(label, "error").Inc()
			s.deps.Logger.Error("publish slack action", "action", a.ActionID, "user", in.User.ID, "error", err)
			return failure(http.StatusServiceUnavailable, "could not store the action; retry")
		}
		result := "published"
		if ack.Duplicate {
			result = "duplicate"
		}
		s.metrics.events.WithLabelValues(label, result).Inc()
		s.deps.Logger.Info("slack action", "action", a.ActionID, "user", in.User.ID, "conversation", conv, "notification", notif, "at", at.Format(time.RFC3339))
	}
	if recognized == 0 {
		s.metrics.events.WithLabelValues("block_actions", "ignored_action").Inc()
	}
	return accepted()
}
