// Package directory looks up what the Slack Web API knows about a message's
// sender (users.info), with a cache and an expiry, so a busy thread costs
// one lookup per user rather than one per message, and the workspace's
// own URL (auth.test), which permalinks are built from.
package directory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackevent"
)

// API is the part of *slack.Client the directory uses.
type API interface {
	GetUserInfoContext(ctx context.Context, user string, options ...slack.GetUserInfoOption) (*slack.User, error)
	AuthTestContext(ctx context.Context) (*slack.AuthTestResponse, error)
}

var _ API = (*slack.Client)(nil)

// Options tune a Directory; zero values are sensible defaults.
type Options struct {
	// TTL is how long a user is remembered; default 1h.
	TTL time.Duration
	// MaxEntries bounds the cache; default 10000.
	MaxEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Directory resolves users through the Web API, with a cache. It is safe for concurrent use; concurrent lookups of the same key
// share one API call.
type Directory struct {
	api   API
	ttl   time.Duration
	max   int
	now   func() time.Time
	group singleflight.Group

	mu    sync.Mutex
	users map[string]entry[*slackevent.Profile]
}

type entry[T any] struct {
	value   T
	expires time.Time
}

// New returns a Directory over api.
func New(api API, opts Options) *Directory {
	if opts.TTL <= 0 {
		opts.TTL = time.Hour
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Directory{
		api: api, ttl: opts.TTL, max: opts.MaxEntries, now: opts.Now,
		users: map[string]entry[*slackevent.Profile]{},
	}
}

// User returns the profile of the Slack user id; cached reports whether
// it came from the cache. Errors are not cached: the next message retries.
func (d *Directory) User(ctx context.Context, id string) (p *slackevent.Profile, cached bool, err error) {
	if p, ok := d.Cached(id); ok {
		return p, true, nil
	}
	v, err, _ := d.group.Do("u:"+id, func() (any, error) {
		u, err := d.api.GetUserInfoContext(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("users.info %s: %w", id, err)
		}
		p := profile(u)
		store(d, d.users, id, p)
		return p, nil
	})
	if err != nil {
		return nil, false, err
	}
	return v.(*slackevent.Profile), false, nil
}

// Cached returns the profile of the Slack user id if the cache holds it
// unexpired, without asking the Web API: a caller can skip what only a
// lookup needs (a deadline for it) on the common path.
func (d *Directory) Cached(id string) (*slackevent.Profile, bool) {
	return lookup(d, d.users, id)
}

// WorkspaceURL asks auth.test for the workspace's URL, such as
// https://acme.slack.com/. It is not cached here: the caller asks once.
func (d *Directory) WorkspaceURL(ctx context.Context) (string, error) {
	r, err := d.api.AuthTestContext(ctx)
	if err != nil {
		return "", fmt.Errorf("auth.test: %w", err)
	}
	if r.URL == "" {
		return "", errors.New("auth.test: no workspace url in the answer")
	}
	return r.URL, nil
}

func lookup[T any](d *Directory, m map[string]entry[T], key string) (T, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := m[key]
	if !ok || !d.now().Before(e.expires) {
		var zero T
		return zero, false
	}
	return e.value, true
}

func store[T any](d *Directory, m map[string]entry[T], key string, v T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if len(m) >= d.max {
		for k, e := range m {
			if !now.Before(e.expires) {
				delete(m, k)
			}
		}
		if len(m) >= d.max {
			clear(m)
		}
	}
	m[key] = entry[T]{value: v, expires: now.Add(d.ttl)}
}

func profile(u *slack.User) *slackevent.Profile {
	return &slackevent.Profile{
		ID:                u.ID,
		TeamID:            u.TeamID,
		Name:              u.Name,
		RealName:          firstNonEmpty(u.RealName, u.Profile.RealName),
		DisplayName:       u.Profile.DisplayName,
		Email:             u.Profile.Email,
		IsBot:             u.IsBot,
		IsRestricted:      u.IsRestricted,
		IsUltraRestricted: u.IsUltraRestricted,
		IsStranger:        u.IsStranger,
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
