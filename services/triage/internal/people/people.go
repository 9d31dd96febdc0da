// Package people maps staff to the people of the organisation file. A
// staff author is known on each channel by that channel's identity (a
// Slack user id, an email address, a GitHub login); conversations store
// person ids (assignee, first responder, audit, the author of a reply), so
// "assigned to me" means the same person whichever channel they answered
// on. The people come from rotation (RotationService.ListPeople), which
// owns them; [Cache] keeps its last answer.
package people

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/promreg"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Person is one person of the organisation file, with every identity they
// are known by.
type Person struct {
	ID     string
	Name   string
	Email  string
	Emails []string
	Slack  string
	GitHub string
}

// GetID is p's id, "" for nil.
func (p *Person) GetID() string {
	if p == nil {
		return ""
	}
	return p.ID
}

// Directory finds people by id or by a channel identity. The zero
// Directory knows nobody.
type Directory struct {
	byID, byName, byEmail, bySlack, byGitHub map[string]*Person
}

// New indexes people. Matching ignores case; a name is matched only when
// one person has it.
func New(people []Person) *Directory {
	d := &Directory{byID: map[string]*Person{}, byName: map[string]*Person{}, byEmail: map[string]*Person{},
		bySlack: map[string]*Person{}, byGitHub: map[string]*Person{}}
	ambiguous := map[string]bool{}
	for i := range people {
		p := &people[i]
		if p.ID == "" {
			continue
		}
		put(d.byID, p.ID, p)
		for _, e := range append([]string{p.Email}, p.Emails...) {
			put(d.byEmail, e, p)
		}
		put(d.bySlack, p.Slack, p)
		put(d.byGitHub, p.GitHub, p)
		if n := key(p.Name); n != "" {
			if _, twice := d.byName[n]; twice {
				ambiguous[n] = true
			}
			d.byName[n] = p
		}
	}
	for n := range ambiguous {
		delete(d.byName, n)
	}
	return d
}

// FromProto indexes rotation's people.
func FromProto(ps []*rotationv1.Person) *Directory {
	out := make([]Person, 0, len(ps))
	for _, p := range ps {
		out = append(out, Person{ID: p.GetId(), Name: p.GetName(), Email: p.GetEmail(), Emails: p.GetEmails(),
			Slack: p.GetSlackId(), GitHub: p.GetGithub()})
	}
	return New(out)
}

func key(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func put(m map[string]*Person, k string, p *Person) {
	if k = key(k); k != "" {
		if _, taken := m[k]; !taken {
			m[k] = p
		}
	}
}

func get(m map[string]*Person, k string) *Person {
	if m == nil {
		return nil
	}
	return m[key(k)]
}

// Len is how many people the directory knows.
func (d *Directory) Len() int {
	if d == nil {
		return 0
	}
	return len(d.byID)
}

// ByID returns the person with this id.
func (d *Directory) ByID(id string) (*Person, bool) {
	if d == nil {
		return nil, false
	}
	p := get(d.byID, id)
	return p, p != nil
}

// Author returns the person a message author is, by the identity their
// channel gives: the Slack user id, the email address, the GitHub login.
// An author whose id is a person id (a reply written in Sidekick) is that
// person too.
func (d *Directory) Author(ch supportv1.Channel, a *supportv1.Author) (*Person, bool) {
	if d == nil || a == nil {
		return nil, false
	}
	if id := a.GetPersonId(); id != "" {
		if p := get(d.byID, id); p != nil {
			return p, true
		}
	}
	var p *Person
	switch ch {
	case supportv1.Channel_CHANNEL_SLACK:
		p = get(d.bySlack, a.GetId())
	case supportv1.Channel_CHANNEL_EMAIL:
		p = get(d.byEmail, a.GetEmail())
		if p == nil {
			p = get(d.byEmail, a.GetId())
		}
	case supportv1.Channel_CHANNEL_GITHUB:
		p = get(d.byGitHub, a.GetId())
		if p == nil {
			p = get(d.byGitHub, a.GetHandle())
		}
	}
	return p, p != nil
}

// Resolve finds the person someone typed or a client sent: a person id, a
// Slack user id, an email address, a GitHub login, or a full name that
// only one person has (the console's signed-in name).
func (d *Directory) Resolve(who string) (*Person, bool) {
	if d == nil {
		return nil, false
	}
	for _, m := range []map[string]*Person{d.byID, d.bySlack, d.byEmail, d.byGitHub, d.byName} {
		if p := get(m, who); p != nil {
			return p, true
		}
	}
	return nil, false
}

// Source gives the current directory.
type Source interface {
	Directory(ctx context.Context) (*Directory, error)
}

// Static is a fixed directory (tests, and installations without rotation).
type Static struct{ D *Directory }

// Directory returns s.D.
func (s Static) Directory(context.Context) (*Directory, error) { return s.D, nil }

// Lister is the part of rotation's gRPC client the cache uses;
// rotationv1.RotationServiceClient satisfies it.
type Lister interface {
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
}

// ErrUnavailable is the cache's answer before rotation ever answered.
var ErrUnavailable = errors.New("the people of the organisation are not known yet (rotation has not answered)")

// Cache asks rotation for the people at most once per TTL and keeps the
// last answer: when rotation cannot be reached the last directory is used
// (people change rarely), and only before the first answer is there
// nothing to go on.
type Cache struct {
	client  Lister
	ttl     time.Duration
	timeout time.Duration
	clock   clock.Clock
	logger  *slog.Logger
	errors  prometheus.Counter

	mu      sync.Mutex
	dir     *Directory
	fetched time.Time
}

// NewCache returns a cache over client refreshed every ttl (default a
// minute).
func NewCache(client Lister, ttl time.Duration, c clock.Clock, logger *slog.Logger, reg prometheus.Registerer) (*Cache, error) {
	if ttl <= 0 {
		ttl = time.Minute
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	errs, err := promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_triage_people_refresh_failures_total",
		Help: "Failed refreshes of the people of the organisation from rotation (the last answer is used meanwhile).",
	}))
	if err != nil {
		return nil, err
	}
	return &Cache{client: client, ttl: ttl, timeout: 5 * time.Second, clock: clock.OrReal(c), logger: logger, errors: errs}, nil
}

// Directory returns the people, asking rotation when the last answer is
// older than the TTL.
func (c *Cache) Directory(ctx context.Context) (*Directory, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if c.dir != nil && now.Sub(c.fetched) < c.ttl {
		return c.dir, nil
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.client.ListPeople(cctx, &rotationv1.ListPeopleRequest{})
	if err != nil {
		c.errors.Inc()
		if c.dir != nil {
			c.logger.Warn("people: rotation ListPeople failed; using the last answer", "age", now.Sub(c.fetched), "error", err)
			c.fetched = now.Add(-c.ttl + c.ttl/10) // ask again soon, not on every call
			return c.dir, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	c.dir, c.fetched = FromProto(resp.GetPeople()), now
	return c.dir, nil
}

// Unknown counts and logs, once per identity, staff authors who are not in
// the organisation file, so that the file can be completed: they stay
// staff and keep their channel identity.
type Unknown struct {
	logger  *slog.Logger
	counter *prometheus.CounterVec
	mu      sync.Mutex
	seen    map[string]bool
}

// NewUnknown registers sidekick_triage_unknown_staff_total on reg.
func NewUnknown(logger *slog.Logger, reg prometheus.Registerer) (*Unknown, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_triage_unknown_staff_total",
		Help: "Staff messages and replies by someone who is not a person of the organisation file, by channel (console for replies written in Sidekick); each identity is logged once.",
	}, []string{"channel"}))
	if err != nil {
		return nil, err
	}
	return &Unknown{logger: logger, counter: c, seen: map[string]bool{}}, nil
}

// Saw records one message or reply by identity on channel.
func (u *Unknown) Saw(channel, identity string) {
	if u == nil {
		return
	}
	u.counter.WithLabelValues(channel).Inc()
	u.mu.Lock()
	first := !u.seen[channel+" "+identity]
	u.seen[channel+" "+identity] = true
	u.mu.Unlock()
	if first {
		u.logger.Warn("a staff author is not a person of the organisation file: add their identity to people (slack, email, emails, github) so their replies count as theirs",
			"channel", channel, "identity", identity)
	}
}
