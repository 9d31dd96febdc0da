package engine

import (
	"context"
	"fmt"
	"strings"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
)

// directory is the people of the organisation file as now known.
func (e *Engine) directory(ctx context.Context) (*people.Directory, error) {
	d, err := e.cfg.People.Directory(ctx)
	if err != nil {
		return nil, fmt.Errorf("people: %w", err)
	}
	return d, nil
}

// recognise marks the author of an inbound message who is a person of the
// organisation file: their person id is recorded on the author, and a
// person is staff whatever their channel made of them (an email from a
// person's own address, a comment by a person's GitHub login), except
// where the channel says the message may not be theirs (an email whose
// SPF, DKIM or DMARC failed) or was not written by a person (bots,
// auto-replies). A staff author who is not in the file stays staff under
// their channel identity, and is counted and logged once.
func (e *Engine) recognise(d *people.Directory, m *supportv1.InboundMessage) {
	a := m.GetAuthor()
	if a == nil || a.GetRole() == supportv1.AuthorRole_AUTHOR_ROLE_BOT || conv.Kind(m) == supportv1.MessageKind_MESSAGE_KIND_AUTOMATED {
		return
	}
	p, ok := d.Author(m.GetChannel(), a)
	if !ok {
		if conv.Role(m) == supportv1.AuthorRole_AUTHOR_ROLE_STAFF && conv.Kind(m) == supportv1.MessageKind_MESSAGE_KIND_POSTED {
			e.unknown.Saw(channelName(m.GetChannel()), a.GetId())
		}
		return
	}
	if m.GetAttributes()["auth_failed"] == "true" && conv.Role(m) != supportv1.AuthorRole_AUTHOR_ROLE_STAFF {
		// Anyone can put a person's address in From: a message that
		// failed authentication stays the customer's.
		return
	}
	a.PersonId = p.ID
	a.Role = supportv1.AuthorRole_AUTHOR_ROLE_STAFF
}

// who is the person an actor names (a person id, a channel identity, a
// name only one person has), or the actor as given when none does: what
// the audit trail and the conversation record.
func (e *Engine) who(ctx context.Context, actorName string) string {
	a := actor(actorName)
	if a == conv.System {
		return a
	}
	d, err := e.directory(ctx)
	if err != nil {
		e.cfg.Logger.Warn("people unknown: recording the actor as given", "actor", a, "error", err)
		return a
	}
	if p, ok := d.Resolve(a); ok {
		return p.ID
	}
	return a
}

// assignee is the person id of a new assignee; "" unassigns. Anyone who is
// not a person of the organisation file is refused (ErrInvalid naming
// them): an assignment to an id nobody is finds nobody.
func (e *Engine) assignee(ctx context.Context, who string) (string, error) {
	who = strings.TrimSpace(who)
	if who == "" {
		return "", nil
	}
	d, err := e.directory(ctx)
	if err != nil {
		return "", err
	}
	if p, ok := d.Resolve(who); ok {
		return p.ID, nil
	}
	return "", fmt.Errorf("assignee %q is not a person of the organisation file (its people: id, slack, email, emails, github): %w", who, ErrInvalid)
}

// AssigneeFilter is the person id a list filter names (a person id, a
// channel identity or a name), or the filter as given.
func (e *Engine) AssigneeFilter(ctx context.Context, who string) string {
	who = strings.TrimSpace(who)
	if who == "" {
		return ""
	}
	if d, err := e.directory(ctx); err == nil {
		if p, ok := d.Resolve(who); ok {
			return p.ID
		}
	}
	return who
}

// channelName is the subject token of a channel, e.g. "email".
func channelName(ch supportv1.Channel) string {
	return strings.ToLower(strings.TrimPrefix(ch.String(), "CHANNEL_"))
}
