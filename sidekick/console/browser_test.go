package console_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
	"github.com/sidekickhq/sidekick/sidekick/internal/browsertest"
)

// notebook is a triage fake that keeps the notes added to c-42, so a page
// load after the note form shows what was posted.
type notebook struct {
	mu    sync.Mutex
	notes []*triagev1.Note
	audit []*triagev1.AuditEntry
}

func (n *notebook) fake(now func() time.Time) *fakeTriage {
	return &fakeTriage{
		get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
			n.mu.Lock()
			defer n.mu.Unlock()
			resp := sampleConversation()
			resp.Notes = append(resp.Notes, n.notes...)
			resp.Audit = append(resp.Audit, n.audit...)
			return resp, nil
		},
		addNote: func(req *triagev1.AddNoteRequest) (*triagev1.AddNoteResponse, error) {
			n.mu.Lock()
			defer n.mu.Unlock()
			note := &triagev1.Note{Id: "n" + string(rune('2'+len(n.notes))), Author: req.GetActor(), Text: req.GetText(), Handoff: req.GetHandoff(), CreatedAt: timestamppb.New(now())}
			n.notes = append(n.notes, note)
			n.audit = append(n.audit, &triagev1.AuditEntry{Actor: req.GetActor(), Action: "note", At: note.GetCreatedAt()})
			return &triagev1.AddNoteResponse{Note: proto.Clone(note).(*triagev1.Note)}, nil
		},
	}
}

// TestBrowserSignInAndNote drives Debian's Chromium headless: open a share
// link, get sent to sign-in, sign in with the token, land on the
// conversation, add a handoff note, and see it on the page with the name
// given at sign-in.
func TestBrowserSignInAndNote(t *testing.T) {
	b := startBrowser(t)
	step, read := b.Step, b.Read
	nb := &notebook{}
	clk := clock.NewFake(t0)
	h := start(t, console.Config{Token: testToken}, nb.fake(clk.Now), nil)
	type css = chromedp.CSS
	step("open the share link", chromedp.Navigate(h.srv.URL+"/console/conversations/c-42"), chromedp.WaitVisible(css("#signin")))
	signinURL := read("location", chromedp.Location())
	step("sign in",
		chromedp.SendKeys(css("#signin input[name=name]"), "Alice Hero"),
		chromedp.SendKeys(css("#signin input[name=token]"), testToken),
		chromedp.Submit(css("#signin")),
		chromedp.WaitVisible(css("#note-form")),
	)
	actor := read("actor", chromedp.Text(css("#actor")))
	step("add a note",
		chromedp.SendKeys(css("#note-form textarea[name=text]"), "Waiting on their heap dump <b>not bold</b>"),
		chromedp.Click(css("#note-form input[name=handoff]")),
		chromedp.Submit(css("#note-form")),
		chromedp.WaitVisible(css("p.flash")),
	)
	location := read("location", chromedp.Location())
	flash := read("flash", chromedp.Text(css("p.flash")))
	notes := read("notes", chromedp.Text(css("#notes")))
	audit := read("audit", chromedp.Text(css("#audit")))

	// The share link clicked on another site (as from Slack): the browser
	// withholds the SameSite=Strict cookie on that navigation, and the
	// console's same-origin reload brings the signed-in person to the
	// conversation, not to sign-in. localhost and 127.0.0.1 are different
	// sites to the browser.
	share := h.srv.URL + "/console/conversations/c-42"
	elsewhere := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>chat</title><a id="share" href="%s">%s</a>`, html.EscapeString(share), html.EscapeString(share))
	}))
	chatURL := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1) + "/chat"
	step("click the share link on another site",
		chromedp.Navigate(chatURL),
		chromedp.WaitVisible(css("#share")),
		chromedp.Click(css("#share")),
		chromedp.WaitVisible(css("#note-form, #signin")),
	)
	afterShare := read("location", chromedp.Location())
	if !strings.Contains(signinURL, "/console/signin?next=") {
		t.Errorf("the share link did not lead to sign-in: %s", signinURL)
	}
	if actor != "Alice Hero" {
		t.Errorf("signed in as %q", actor)
	}
	if !strings.HasSuffix(location, "/console/conversations/c-42?done=note") || flash != "Note added." {
		t.Errorf("after the note: at %s, flash %q", location, flash)
	}
	if !strings.Contains(notes, "Waiting on their heap dump <b>not bold</b>") || !strings.Contains(notes, "Alice Hero") || strings.Count(notes, "handoff") < 2 {
		t.Errorf("notes section after adding one:\n%s", notes)
	}
	if !strings.Contains(audit, "Alice Hero") {
		t.Errorf("audit trail lacks the note:\n%s", audit)
	}
	if afterShare != share {
		t.Errorf("the share link from another site landed on %s, want %s", afterShare, share)
	}
	got := callsOf[*triagev1.AddNoteRequest](h.triage)
	if len(got) != 1 || got[0].GetActor() != "Alice Hero" || !got[0].GetHandoff() {
		t.Errorf("AddNote calls: %v", got)
	}
}

// TestBrowserOIDCSignInAndOut drives Chromium through the organisation's
// sign-in: a share link leads to sign-in, its button to the provider (the
// in-test one, over TLS on another site, whose certificate alone the
// browser is told to trust) and back to the conversation as the person
// the provider vouched for; a note carries that person as actor; signing
// out ends the session, and the share link leads to sign-in again.
func TestBrowserOIDCSignInAndOut(t *testing.T) {
	p := startIdP(t)
	spki := sha256.Sum256(p.srv.Certificate().RawSubjectPublicKeyInfo)
	b := browsertest.Start(t, 90*time.Second,
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	step, read := b.Step, b.Read
	nb := &notebook{}
	clk := clock.NewFake(t0)
	// The console is at localhost and the provider at 127.0.0.1: two
	// sites, so the way back from the provider is a cross-site
	// navigation, as it is in production.
	h := startOIDCAt(t, p, nb.fake(clk.Now), "localhost")
	p.signInAs("Bob.Alias@example.org", nil)
	type css = chromedp.CSS
	share := strings.Replace(h.srv.URL, "127.0.0.1", "localhost", 1) + "/console/conversations/c-42"

	step("open the share link", chromedp.Navigate(share), chromedp.WaitVisible(css("#oidc")))
	signinURL := read("location", chromedp.Location())
	// #actor is on every page of a signed-in person.
	step("sign in at the provider", chromedp.Click(css("#oidc")), chromedp.WaitVisible(css("#actor")))
	landed := read("location", chromedp.Location())
	actor := read("actor", chromedp.Text(css("#actor")))
	if landed != share {
		t.Fatalf("back from the provider at %s (as %q), want %s", landed, actor, share)
	}
	step("add a note",
		chromedp.SendKeys(css("#note-form textarea[name=text]"), "Asked for the heap dump"),
		chromedp.Submit(css("#note-form")),
		chromedp.WaitVisible(css("p.flash")),
	)
	flash := read("flash", chromedp.Text(css("p.flash")))
	step("sign out", chromedp.Submit(css(`form[action$="/signout"]`)), chromedp.WaitVisible(css("#oidc")))
	signedOut := read("location", chromedp.Location())
	step("open the share link again", chromedp.Navigate(share), chromedp.WaitVisible(css("#oidc, #actor")))
	again := read("location", chromedp.Location())

	if !strings.Contains(signinURL, "/console/signin?next=") {
		t.Errorf("the share link did not lead to sign-in: %s", signinURL)
	}
	if actor != "bob" {
		t.Errorf("signed in as %q, want bob (the provider vouched for his other address)", actor)
	}
	if flash != "Note added." {
		t.Errorf("after the note: flash %q", flash)
	}
	if got := callsOf[*triagev1.AddNoteRequest](h.triage); len(got) != 1 || got[0].GetActor() != "bob" {
		t.Errorf("AddNote calls %v, want one by bob", got)
	}
	p.mu.Lock()
	tokens := p.tokens
	p.mu.Unlock()
	if tokens != 1 {
		t.Errorf("the provider's token endpoint was called %d times, want once", tokens)
	}
	if !strings.Contains(signedOut, "/console/signin") || !strings.Contains(again, "/console/signin?next=") {
		t.Errorf("after signing out: at %s; the share link then led to %s, want sign-in both times", signedOut, again)
	}
}
