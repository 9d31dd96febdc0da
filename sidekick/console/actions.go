package console

import (
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/status"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// maxNoteLen bounds a note, in bytes.
const maxNoteLen = 16 << 10

// maxReplyLen bounds a reply, in bytes: above GitHub's 65,536 characters,
// the most any channel takes; triage checks each channel's own limit.
const maxReplyLen = 256 << 10

// closeReasons are the close form's choices.
var closeReasons = map[string]supportv1.CloseReason{
	"":          supportv1.CloseReason_CLOSE_REASON_RESOLVED,
	"resolved":  supportv1.CloseReason_CLOSE_REASON_RESOLVED,
	"spam":      supportv1.CloseReason_CLOSE_REASON_SPAM,
	"duplicate": supportv1.CloseReason_CLOSE_REASON_DUPLICATE,
}

// action is POST /console/conversations/{id}/{action}: one
// ConversationService call with the visitor as actor, then a redirect
// back to the conversation.
//
// Forms: assign (assignee: a person id, empty unassigns); tag (add,
// remove: comma-separated tags; categories: comma-separated, predominant
// first, empty leaves them); note (text, handoff=on); reply (text, sent
// to the customer); retry (outbound_id of a failed reply); close (reason:
// resolved, spam, duplicate); reopen; escalate (reason, team: empty lets
// notifier choose).
func (s *Service) action(w http.ResponseWriter, r *http.Request, v *visitor) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if _, ok := doneMessages[action]; !ok {
		s.renderError(w, r, v, http.StatusNotFound, "There is no action "+action+".")
		return
	}
	if !s.checkPost(w, r, v) {
		s.metrics.actions.WithLabelValues(action, "rejected").Inc()
		return
	}
	f := r.PostForm
	invalid := func(msg string) {
		s.metrics.actions.WithLabelValues(action, "rejected").Inc()
		s.renderError(w, r, v, http.StatusBadRequest, msg)
	}
	ctx, cancel := s.call(r.Context())
	defer cancel()
	var err error
	switch action {
	case "assign":
		_, err = s.deps.Conversations.Assign(ctx, &triagev1.AssignRequest{Id: id, Assignee: strings.TrimSpace(f.Get("assignee")), Actor: v.Actor})
	case "tag":
		add, remove, cats := splitList(f.Get("add")), splitList(f.Get("remove")), splitList(f.Get("categories"))
		if len(add)+len(remove)+len(cats) == 0 {
			invalid("Give a tag to add or remove, or the categories.")
			return
		}
		_, err = s.deps.Conversations.Tag(ctx, &triagev1.TagRequest{Id: id, Add: add, Remove: remove, Categories: cats, Actor: v.Actor})
	case "note":
		text := strings.TrimSpace(f.Get("text"))
		switch {
		case text == "":
			invalid("A note needs some text.")
			return
		case len(text) > maxNoteLen:
			invalid("The note is too long.")
			return
		}
		handoff := f.Get("handoff") == "on" || f.Get("handoff") == "true"
		_, err = s.deps.Conversations.AddNote(ctx, &triagev1.AddNoteRequest{Id: id, Text: text, Handoff: handoff, Actor: v.Actor})
	case "reply":
		text := strings.TrimSpace(f.Get("text"))
		switch {
		case text == "":
			invalid("A reply needs some text.")
			return
		case len(text) > maxReplyLen:
			invalid("The reply is too long.")
			return
		}
		_, err = s.deps.Conversations.Reply(ctx, &triagev1.ReplyRequest{ConversationId: id, Text: text, Actor: v.Actor})
	case "retry":
		outbound := strings.TrimSpace(f.Get("outbound_id"))
		if outbound == "" {
			invalid("Say which reply to send again.")
			return
		}
		_, err = s.deps.Conversations.RetryOutbound(ctx, &triagev1.RetryOutboundRequest{OutboundId: outbound, Actor: v.Actor})
	case "close":
		reason, ok := closeReasons[strings.ToLower(strings.TrimSpace(f.Get("reason")))]
		if !ok {
			invalid("Close with reason resolved, spam or duplicate.")
			return
		}
		_, err = s.deps.Conversations.Close(ctx, &triagev1.CloseRequest{Id: id, Reason: reason, Actor: v.Actor})
	case "reopen":
		_, err = s.deps.Conversations.Reopen(ctx, &triagev1.ReopenRequest{Id: id, Actor: v.Actor})
	case "escalate":
		_, err = s.deps.Conversations.Escalate(ctx, &triagev1.EscalateRequest{
			Id: id, Reason: strings.TrimSpace(f.Get("reason")), Team: strings.TrimSpace(f.Get("team")), Actor: v.Actor,
		})
	}
	if err != nil {
		result := "error"
		if rejected(err) {
			result = "rejected"
		}
		s.metrics.actions.WithLabelValues(action, result).Inc()
		s.rpcError(w, r, v, strings.ToUpper(action[:1])+action[1:]+" on conversation "+id, err)
		return
	}
	s.metrics.actions.WithLabelValues(action, "ok").Inc()
	s.deps.Logger.Info("console action", "action", action, "conversation_id", id, "actor", v.Actor)
	http.Redirect(w, r, BasePath+"/conversations/"+url.PathEscape(id)+"?done="+action, http.StatusSeeOther)
}

// splitList splits a comma-separated field, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// statusMessage is a gRPC error's message without the code prefix.
func statusMessage(err error) string { return status.Convert(err).Message() }
