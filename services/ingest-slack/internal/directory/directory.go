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
	// TTL is how long a user is remembered before a lookup asks again;
	// default 1h.
	TTL time.Duration
	// MaxStale is how long past its TTL a user is still answered from
	// the cache while it is looked up again in the background; default
	// 24h. Older than that, a lookup waits for the Web API.
	MaxStale time.Duration
	// MaxEntries bounds the cache; default 10000.
	MaxEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Refreshed, if set, is told the outcome of each background lookup
	// (nil: the profile was replaced).
	Refreshed func(error)
}

// refreshTimeout bounds a background lookup; refreshRetry is how long a
// failed one leaves the stale profile in use before the next try.
const (
	refreshTimeout = 10 * time.Second
	refreshRetry   = time.Minute
)

// Directory resolves users through the Web API, with a cache. It is safe
// for concurrent use; concurrent lookups of the same key share one API
// call.
type Directory struct {
	api       API
	ttl       time.Duration
	maxStale  time.Duration
	max       int
	now       func() time.Time
	refreshed func(error)
	group     singleflight.Group

	mu    sync.Mutex
	users map[string]entry[*slackevent.Profile]
}

type entry[T any] struct {
	value   T
	expires time.Time
	// refreshing marks an expired entry whose background lookup is on
	// its way.
	refreshing bool
}

// New returns a Directory over api.
func New(api API, opts Options) *Directory {
	if opts.TTL <= 0 {
		opts.TTL = time.Hour
	}
	if opts.MaxStale <= 0 {
		opts.MaxStale = 24 * time.Hour
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Refreshed == nil {
		opts.Refreshed = func(error) {}
	}
	return &Directory{
		api: api, ttl: opts.TTL, maxStale: opts.MaxStale, max: opts.MaxEntries, now: opts.Now, refreshed: opts.Refreshed,
		users: map[string]entry[*slackevent.Profile]{},
	}
}

// User returns the profile of the Slack user id; cached reports whether
// it came from the cache (see Cached). Errors are not cached: the next
// message retries.
func (d *Directory) User(ctx context.Context, id string) (p *slackevent.Profile, cached bool, err error) {
	if p, ok := d.Cached(id); ok {
		return p, true, nil
	}
	p, err = d.fetch(ctx, id)
	return p, false, err
}

// fetch asks users.info and caches the answer; concurrent fetches of one
// user share the call.
func (d *Directory) fetch(ctx context.Context, id string) (*slackevent.Profile, error) {
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
		return nil, err
	}
	return v.(*slackevent.Profile), nil
}

// Cached returns the profile of the Slack user id if the cache holds it,
// without asking the Web API on the caller's path: a caller can skip what
// only a lookup needs (a deadline for it) on the common path. A profile
// past its TTL (within MaxStale) is still returned, and looked up again
// in the background, once: a sender seen before never waits for Slack,
// and their next message carries what Slack answered.
func (d *Directory) Cached(id string) (*slackevent.Profile, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.users[id]
	now := d.now()
	if !ok || !now.Before(e.expires.Add(d.maxStale)) {
		return nil, false
	}
	if !now.Before(e.expires) && !e.refreshing {
		e.refreshing = true
		d.users[id] = e
		go d.refresh(id)
	}
	return e.value, true
}

// refresh looks a stale user up again. A failure keeps the stale profile
// for refreshRetry (at most the TTL) before the next try.
func (d *Directory) refresh(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	_, err := d.fetch(ctx, id)
	if err != nil {
		d.mu.Lock()
		if e, ok := d.users[id]; ok && e.refreshing {
			e.refreshing = false
			e.expires = d.now().Add(min(d.ttl, refreshRetry))
			d.users[id] = e
		}
		d.mu.Unlock()
	}
	d.refreshed(err)
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

func store[T any](d *Directory, m map[string]entry[T], key string, v T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if len(m) >= d.max {
		for k, e := range m {
			if !now.Before(e.expires) && !e.refreshing {
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
