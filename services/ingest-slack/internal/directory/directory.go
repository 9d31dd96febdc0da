// Package directory looks up what the Slack Web API knows about a message's
// sender (users.info) and its thread's permalink (chat.getPermalink), and
// caches both with an expiry, so a busy thread costs one lookup per user
// and thread rather than one per message.
package directory

import (
	"context"
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
	GetPermalinkContext(ctx context.Context, params *slack.PermalinkParameters) (string, error)
}

var _ API = (*slack.Client)(nil)

// Options tune a Directory; zero values are sensible defaults.
type Options struct {
	// TTL is how long a user or permalink is remembered; default 1h.
	TTL time.Duration
	// MaxEntries bounds each cache; default 10000.
	MaxEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Directory resolves users and permalinks through the Web API, with a
// cache. It is safe for concurrent use; concurrent lookups of the same key
// share one API call.
type Directory struct {
	api   API
	ttl   time.Duration
	max   int
	now   func() time.Time
	group singleflight.Group

	mu    sync.Mutex
	users map[string]entry[*slackevent.Profile]
	links map[string]entry[string]
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
		links: map[string]entry[string]{},
	}
}

// User returns the profile of the Slack user id; cached reports whether
// it came from the cache. Errors are not cached: the next message retries.
func (d *Directory) User(ctx context.Context, id string) (p *slackevent.Profile, cached bool, err error) {
	if p, ok := lookup(d, d.users, id); ok {
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

// Permalink returns the permalink of the message at ts in channel; cached
// reports whether it came from the cache.
func (d *Directory) Permalink(ctx context.Context, channel, ts string) (link string, cached bool, err error) {
	key := channel + "/" + ts
	if l, ok := lookup(d, d.links, key); ok {
		return l, true, nil
	}
	v, err, _ := d.group.Do("p:"+key, func() (any, error) {
		l, err := d.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: channel, Ts: ts})
		if err != nil {
			return "", fmt.Errorf("chat.getPermalink %s: %w", key, err)
		}
		store(d, d.links, key, l)
		return l, nil
	})
	if err != nil {
		return "", false, err
	}
	return v.(string), false, nil
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
