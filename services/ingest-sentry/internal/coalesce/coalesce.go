// Package coalesce folds a storm of Sentry occurrences into few messages
// per issue, like Alertmanager's group_wait and group_interval: the first
// occurrence of an issue is sent at once, later ones are counted and sent
// as one update per issue per interval. Every occurrence added ends up in
// exactly one Batch, so the counts of the messages sent add up to the
// occurrences received.
//
// A Coalescer is not safe for concurrent use: one goroutine owns it and
// injects the time.
package coalesce

import (
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// maxUsers bounds the distinct affected users tracked per batch.
const maxUsers = 1000

// maxEventIDs bounds the event ids remembered per key to recognise the
// same Sentry event reported twice.
const maxEventIDs = 4096

// Occurrence is one report of a Sentry event.
type Occurrence struct {
	Message *supportv1.InboundMessage
	// Seq is the caller's token (the stream sequence), returned in the
	// batch that accounts for the occurrence.
	Seq uint64
	// EventID is Sentry's event id. The same event reported twice (by an
	// error webhook and an issue alert, say) is counted once.
	EventID string
	// IssueCreated marks issue.created, which reports the issue's first
	// event without its id: it is counted unless an event seen at the
	// issue's first-seen time already was (or is, later).
	IssueCreated bool
}

// Batch is a group of occurrences of one issue to send as one message.
type Batch struct {
	Key string
	// First is set when nothing was sent for the key yet (in this process,
	// or since it was forgotten): the message is POSTED, else UPDATED.
	First bool
	// Count is the number of distinct events.
	Count int
	// Duplicates is the number of reports of events already counted; they
	// are acknowledged with the batch but not counted.
	Duplicates int
	// Seqs are the caller's tokens for the occurrences (stream sequences),
	// to acknowledge once the batch is sent.
	Seqs []uint64
	// Latest is the newest occurrence; its id becomes the message id.
	Latest              *supportv1.InboundMessage
	FirstSeen, LastSeen time.Time
	// Level is the most severe level seen.
	Level string
	users map[string]struct{}
	// moreUsers is set when users overflowed maxUsers.
	moreUsers bool
}

func (b *Batch) add(m *supportv1.InboundMessage, seq uint64, at time.Time, rank func(string) int, duplicate bool) {
	b.Seqs = append(b.Seqs, seq)
	if duplicate {
		b.Duplicates++
		return
	}
	b.Count++
	if b.Latest == nil || !at.Before(b.LastSeen) {
		b.Latest = m
	}
	if b.FirstSeen.IsZero() || at.Before(b.FirstSeen) {
		b.FirstSeen = at
	}
	if at.After(b.LastSeen) {
		b.LastSeen = at
	}
	if l := m.GetAttributes()["level"]; rank(l) > rank(b.Level) || b.Level == "" {
		b.Level = l
	}
	if id := m.GetAuthor().GetId(); id != "" {
		if b.users == nil {
			b.users = map[string]struct{}{}
		}
		if _, ok := b.users[id]; !ok {
			if len(b.users) < maxUsers {
				b.users[id] = struct{}{}
			} else {
				b.moreUsers = true
			}
		}
	}
}

// merge folds older, a batch that failed to send, into b.
func (b *Batch) merge(older *Batch, rank func(string) int) {
	b.Count += older.Count
	b.Duplicates += older.Duplicates
	b.Seqs = append(older.Seqs, b.Seqs...)
	b.First = b.First || older.First
	if b.Latest == nil {
		b.Latest = older.Latest
	}
	if b.FirstSeen.IsZero() || (!older.FirstSeen.IsZero() && older.FirstSeen.Before(b.FirstSeen)) {
		b.FirstSeen = older.FirstSeen
	}
	if older.LastSeen.After(b.LastSeen) {
		b.LastSeen = older.LastSeen
	}
	if rank(older.Level) > rank(b.Level) {
		b.Level = older.Level
	}
	for u := range older.users {
		if b.users == nil {
			b.users = map[string]struct{}{}
		}
		if len(b.users) < maxUsers {
			b.users[u] = struct{}{}
		} else {
			b.moreUsers = true
		}
	}
	b.moreUsers = b.moreUsers || older.moreUsers
}

// Message is the InboundMessage to send for the batch: the latest
// occurrence, POSTED when First else UPDATED, with attributes occurrences
// (Count), first_seen, last_seen, level (most severe) and affected_users.
// Its id is the latest occurrence's, so sending the same batch again is a
// duplicate downstream.
func (b *Batch) Message() *supportv1.InboundMessage {
	m := proto.Clone(b.Latest).(*supportv1.InboundMessage)
	if m.Attributes == nil {
		m.Attributes = map[string]string{}
	}
	m.Kind = supportv1.MessageKind_MESSAGE_KIND_UPDATED
	if b.First {
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
	}
	m.Attributes["occurrences"] = strconv.Itoa(b.Count)
	m.Attributes["first_seen"] = b.FirstSeen.UTC().Format(time.RFC3339Nano)
	m.Attributes["last_seen"] = b.LastSeen.UTC().Format(time.RFC3339Nano)
	if b.Level != "" {
		m.Attributes["level"] = b.Level
	}
	users := strconv.Itoa(len(b.users))
	if b.moreUsers {
		users += "+"
	}
	m.Attributes["affected_users"] = users
	m.SentAt = timestamppb.New(b.LastSeen)
	return m
}

type group struct {
	sent     bool      // something was sent for the key
	lastSent time.Time // when
	pending  *Batch
	retryAt  time.Time // after a failed send: not before
	touched  time.Time // last occurrence or send

	events     map[string]struct{} // event ids counted, at most maxEventIDs
	eventOrder []string            // the same, oldest first
	firstAt    time.Time           // earliest event time counted
	createdAt  time.Time           // first-seen time of a counted issue.created
	createdOK  bool                // an issue.created was counted and not yet matched with its event
}

// duplicate reports whether o is an event already counted for g, and
// remembers it otherwise.
func (g *group) duplicate(o Occurrence, at time.Time) bool {
	if o.IssueCreated {
		if !g.firstAt.IsZero() && g.firstAt.Equal(at) {
			return true // its first event was already counted
		}
		g.createdAt, g.createdOK = at, true
		g.noteTime(at)
		return false
	}
	if o.EventID != "" {
		if _, ok := g.events[o.EventID]; ok {
			return true
		}
		if g.events == nil {
			g.events = map[string]struct{}{}
		}
		g.events[o.EventID] = struct{}{}
		g.eventOrder = append(g.eventOrder, o.EventID)
		if len(g.eventOrder) > maxEventIDs {
			delete(g.events, g.eventOrder[0])
			g.eventOrder = g.eventOrder[1:]
		}
	}
	if g.createdOK && g.createdAt.Equal(at) {
		g.createdOK = false // the event issue.created stood for
		return true
	}
	g.noteTime(at)
	return false
}

func (g *group) noteTime(at time.Time) {
	if g.firstAt.IsZero() || at.Before(g.firstAt) {
		g.firstAt = at
	}
}

// Coalescer groups occurrences per key.
type Coalescer struct {
	interval time.Duration
	idle     time.Duration
	rank     func(level string) int
	groups   map[string]*group
	pending  int
}

// New returns a Coalescer that sends at most one update per key per
// interval and forgets a key idle (nothing pending, nothing received) for
// idle, after which its next occurrence is sent at once again. rank orders
// levels by severity.
func New(interval, idle time.Duration, rank func(level string) int) *Coalescer {
	if rank == nil {
		rank = func(string) int { return 0 }
	}
	return &Coalescer{interval: interval, idle: idle, rank: rank, groups: map[string]*group{}}
}

// Add records one occurrence of key, received at now. It returns a batch
// to send now (the first occurrence of a key, or one arriving after a
// quiet interval) or nil when the occurrence waits for the key's next
// update. A batch may count nothing (Count 0) when it holds only
// duplicates: acknowledge it without sending.
func (c *Coalescer) Add(key string, o Occurrence, now time.Time) *Batch {
	m := o.Message
	g := c.groups[key]
	if g == nil {
		g = &group{}
		c.groups[key] = g
	}
	if g.pending == nil {
		g.pending = &Batch{Key: key, First: !g.sent}
	}
	at := now
	if ts := m.GetSentAt(); ts != nil && ts.IsValid() && !ts.AsTime().IsZero() {
		at = ts.AsTime()
	}
	g.pending.add(m, o.Seq, at, c.rank, g.duplicate(o, at))
	g.touched = now
	c.pending++
	if c.due(g, now) {
		return c.take(g)
	}
	return nil
}

// due reports whether g's pending batch may be sent at now.
func (c *Coalescer) due(g *group, now time.Time) bool {
	if g.pending == nil || now.Before(g.retryAt) {
		return false
	}
	return !g.sent || !now.Before(g.lastSent.Add(c.interval))
}

func (c *Coalescer) take(g *group) *Batch {
	b := g.pending
	g.pending = nil
	c.pending -= len(b.Seqs)
	return b
}

// Due returns the batches whose interval has passed at now.
func (c *Coalescer) Due(now time.Time) []*Batch {
	var out []*Batch
	for _, g := range c.groups {
		if c.due(g, now) {
			out = append(out, c.take(g))
		}
	}
	return out
}

// Flush returns key's pending batch regardless of its interval (before a
// state change of the issue is passed on), or nil.
func (c *Coalescer) Flush(key string) *Batch {
	g := c.groups[key]
	if g == nil || g.pending == nil {
		return nil
	}
	return c.take(g)
}

// FlushAll returns every pending batch (at shutdown).
func (c *Coalescer) FlushAll() []*Batch {
	var out []*Batch
	for _, g := range c.groups {
		if g.pending != nil {
			out = append(out, c.take(g))
		}
	}
	return out
}

// Sent records that a batch of key was sent at now.
func (c *Coalescer) Sent(key string, now time.Time) {
	g := c.groups[key]
	if g == nil {
		g = &group{}
		c.groups[key] = g
	}
	g.sent, g.lastSent, g.retryAt, g.touched = true, now, time.Time{}, now
}

// Failed puts back a batch that could not be sent, to be retried no
// sooner than retryAt together with what arrived meanwhile.
func (c *Coalescer) Failed(b *Batch, retryAt time.Time) {
	g := c.groups[b.Key]
	if g == nil {
		g = &group{}
		c.groups[b.Key] = g
	}
	if g.pending == nil {
		g.pending = b
	} else {
		g.pending.merge(b, c.rank)
	}
	g.retryAt = retryAt
	c.pending += len(b.Seqs)
}

// Forget drops what the Coalescer knows of key once nothing is pending,
// so its next occurrence is sent at once (after the issue was resolved or
// muted, a new occurrence is news).
func (c *Coalescer) Forget(key string) {
	if g := c.groups[key]; g != nil && g.pending == nil {
		delete(c.groups, key)
	}
}

// Evict forgets keys idle since before now minus the idle time.
func (c *Coalescer) Evict(now time.Time) {
	for k, g := range c.groups {
		if g.pending == nil && now.Sub(g.touched) >= c.idle {
			delete(c.groups, k)
		}
	}
}

// NextDue is when the earliest pending batch becomes due; ok is false
// when nothing is pending.
func (c *Coalescer) NextDue() (at time.Time, ok bool) {
	for _, g := range c.groups {
		if g.pending == nil {
			continue
		}
		t := g.retryAt
		if g.sent && g.lastSent.Add(c.interval).After(t) {
			t = g.lastSent.Add(c.interval)
		}
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	return at, ok
}

// Pending is the number of occurrences (reports) waiting in batches.
func (c *Coalescer) Pending() int { return c.pending }

// Keys is the number of keys tracked.
func (c *Coalescer) Keys() int { return len(c.groups) }
