package people

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func directory() *Directory {
	return New([]Person{
		{ID: "farah", Name: "Farah Faruqi", Email: "farah@example.com", Emails: []string{"Farah@Acme.example"}, Slack: "U0FARAH", GitHub: "farah-f"},
		{ID: "gus", Name: "Gus Garcia", Email: "gus@example.com", Slack: "U0GUS"},
		{ID: "gus2", Name: "Gus Garcia", Email: "gus2@example.com"},
	})
}

func TestAuthorByChannelIdentity(t *testing.T) {
	d := directory()
	for _, tc := range []struct {
		ch   supportv1.Channel
		a    *supportv1.Author
		want string
	}{
		{supportv1.Channel_CHANNEL_SLACK, &supportv1.Author{Id: "U0FARAH"}, "farah"},
		{supportv1.Channel_CHANNEL_EMAIL, &supportv1.Author{Id: "farah@acme.example", Email: "farah@acme.example"}, "farah"},
		{supportv1.Channel_CHANNEL_GITHUB, &supportv1.Author{Id: "Farah-F"}, "farah"},
		{supportv1.Channel_CHANNEL_EMAIL, &supportv1.Author{PersonId: "gus"}, "gus"},
		// An identity counts only on its own channel.
		{supportv1.Channel_CHANNEL_GITHUB, &supportv1.Author{Id: "U0FARAH"}, ""},
		{supportv1.Channel_CHANNEL_SLACK, &supportv1.Author{Id: "farah@example.com"}, ""},
		{supportv1.Channel_CHANNEL_EMAIL, &supportv1.Author{Id: "jane@globex.example"}, ""},
	} {
		p, ok := d.Author(tc.ch, tc.a)
		if got := map[bool]string{true: p.GetID(), false: ""}[ok]; got != tc.want {
			t.Errorf("Author(%s, %v) = %q, want %q", tc.ch, tc.a, got, tc.want)
		}
	}
}

func TestResolveAnyIdentity(t *testing.T) {
	d := directory()
	for who, want := range map[string]string{
		"farah": "farah", "U0FARAH": "farah", "farah@acme.example": "farah", "farah-f": "farah", "Farah Faruqi": "farah",
		"gus": "gus", "Gus Garcia": "", "nobody": "", "": "",
	} {
		p, ok := d.Resolve(who)
		if got := map[bool]string{true: p.GetID(), false: ""}[ok]; got != want {
			t.Errorf("Resolve(%q) = %q, want %q (a name two people have names nobody)", who, got, want)
		}
	}
	var none *Directory
	if _, ok := none.Resolve("farah"); ok {
		t.Error("a nil directory knows somebody")
	}
}

type lister struct {
	calls int
	err   error
}

func (l *lister) ListPeople(context.Context, *rotationv1.ListPeopleRequest, ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error) {
	l.calls++
	if l.err != nil {
		return nil, l.err
	}
	return &rotationv1.ListPeopleResponse{People: []*rotationv1.Person{{Id: "farah", SlackId: "U0FARAH"}}}, nil
}

// TestCacheKeepsTheLastAnswer: rotation is asked once per TTL; when it
// fails the last answer serves, and before any answer the error says so.
func TestCacheKeepsTheLastAnswer(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	l := &lister{err: errors.New("connection refused")}
	c, err := NewCache(l, time.Minute, clk, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Directory(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("before any answer: %v, want ErrUnavailable", err)
	}
	l.err = nil
	if d, err := c.Directory(ctx); err != nil || d.Len() != 1 {
		t.Fatalf("first answer: %v %v", d, err)
	}
	if _, err := c.Directory(ctx); err != nil || l.calls != 2 {
		t.Fatalf("within the TTL rotation was asked again (%d calls): %v", l.calls, err)
	}
	clk.Advance(2 * time.Minute)
	l.err = errors.New("unavailable")
	if d, err := c.Directory(ctx); err != nil || d.Len() != 1 || l.calls != 3 {
		t.Fatalf("rotation down after an answer: %v %v (%d calls), want the last answer", d, err, l.calls)
	}
}
