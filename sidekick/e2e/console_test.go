package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/cli"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
	"github.com/sidekickhq/sidekick/sidekick/internal/browsertest"
)

type css = chromedp.CSS

// The payloads of the cross-site scripting checks: each would set
// window.xssRan if it ran, and none may become markup.
const (
	xssScript = `<script>window.xssRan="script"</script>`
	xssImg    = `<img src=x onerror="window.xssRan='img'">`
	xssLink   = `javascript:window.xssRan='link'`
	// xssAll is every payload in one field, the link both as Slack writes
	// links and as Markdown.
	xssAll = "payload " + xssScript + " " + xssImg + " <" + xssLink + "|open me> [docs](" + xssLink + ")"
)

// injected lists what of the payloads became live in the page: a script
// that ran, an inline script or injected image element, an event-handler
// attribute, a javascript: link or form.
const injected = `(() => {
	const bad = [];
	if (window.xssRan !== undefined) bad.push("a payload ran: " + window.xssRan);
	for (const s of document.querySelectorAll("script")) if (!s.src) bad.push("an inline script element: " + s.textContent);
	for (const i of document.querySelectorAll("img")) if (i.getAttribute("src") === "x") bad.push("an injected image");
	for (const el of document.querySelectorAll("*")) for (const a of el.attributes) if (a.name.startsWith("on")) bad.push("a handler attribute " + a.name + " on " + el.tagName);
	for (const el of document.querySelectorAll("[href], [action], [src], [formaction]")) {
		for (const n of ["href", "action", "src", "formaction"]) {
			const v = (el.getAttribute(n) || "").replace(/[\s\u0000-\u001f]/g, "").toLowerCase();
			if (v.startsWith("javascript:")) bad.push("a javascript: " + n + " on " + el.tagName);
		}
	}
	return bad.join("; ");
})()`

// TestConsoleInTheBrowser drives the console of the whole stack (real
// triage, rotation, NATS and PostgreSQL; Slack, email and the customer
// directory fed as they are in production) in one headless Chromium:
//
//   - live: a signed Slack event posted to ingest-slack appears in the open
//     queue page without a reload;
//   - search: the search box finds a conversation by a word of a
//     follow-up message's body;
//   - calendar: an override created in the calendar's form is what
//     `sidekick oncall` says, and after its Delete button it is not;
//   - reports: every count on the reports page equals `sidekick report
//     --json` for the same days;
//   - cross-site scripting: script, image and javascript: payloads in
//     every field a customer or staff member writes (message text, email
//     subject and sender, customer name and organisation, note, handoff
//     note, tag, override note) are shown as text on every page, and none
//     runs even with the content security policy turned off (the escaping
//     alone holds; the policy is a second wall, tested in the console's
//     own tests);
//   - actions: assign, reply, escalate, close and reopen reach triage; a
//     reply Slack refused (not_in_channel) shows as not delivered with
//     Slack's reason, and its Send again button gets it to Slack once.
func TestConsoleInTheBrowser(t *testing.T) {
	// Replies reach a fake Slack, which can refuse one.
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	stack, _ := startStack(t, "SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-console", "SIDEKICK_SLACK_API_URL="+slack.APIURL())
	a := dialStack(t, stack)
	b := browsertest.Start(t, 6*time.Minute)
	base := stack.ConsoleURL
	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	// Every page this browser loads runs without the content security
	// policy, so a payload that became markup would run and say so.
	b.Step("turn the content security policy off", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true})
		return chromedp.Void{}, err
	})

	a.addCustomer(t, &triagev1.Customer{Id: "xss-co", Name: xssScript + " " + xssImg, Organisation: xssAll,
		Plan: "enterprise", SlackUserIds: []string{"U0XSS"}})

	var (
		first          *supportv1.Conversation
		firstTS, xssTS string
	)
	t.Run("a new Slack message appears in the open queue without a reload", func(t *testing.T) {
		b := b.For(t)
		b.Step("open the queue", chromedp.Navigate(base+"/"), chromedp.WaitReady(css(`body[data-live-state="open"]`)))
		browsertest.Eval[string](b, "mark this page", `window.samePage = "yes"`)
		now := time.Now()
		firstTS, xssTS = fmt.Sprintf("%d.000100", now.Unix()), fmt.Sprintf("%d.000200", now.Unix())
		body := messageEvent("Ev0CONSOLE1", "U0CUST1", "Our dashboards stopped loading after the upgrade", firstTS)
		if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), body); code != http.StatusOK {
			t.Fatalf("signed Slack event: %d", code)
		}
		b.Until("the new conversation in the queue", `[...document.querySelectorAll("#queue td.subject")].some(td => td.textContent.includes("dashboards stopped loading"))`)
		if mark := browsertest.Eval[string](b, "the mark", `window.samePage || "reloaded"`); mark != "yes" {
			t.Errorf("the page was reloaded (mark %q), not updated in place", mark)
		}
		first = a.awaitThread(t, supportv1.Channel_CHANNEL_SLACK, "slack:T0DEMO/C0SUPPORT/"+firstTS)
		id := browsertest.Eval[string](b, "the row's id", `[...document.querySelectorAll("#queue tr[data-id]")].find(tr => tr.textContent.includes("dashboards stopped loading")).dataset.id`)
		if id != first.GetId() {
			t.Errorf("the queue's new row is %q, triage's conversation %q", id, first.GetId())
		}

		// A customer whose name and text carry every payload writes while
		// the queue is open: the update swaps their row in as text.
		body = messageEvent("Ev0CONSOLEXSS", "U0XSS", xssAll, xssTS)
		if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), body); code != http.StatusOK {
			t.Fatalf("signed Slack event: %d", code)
		}
		b.Until("the payload's conversation in the queue", `document.querySelectorAll("#queue tr[data-id]").length >= 2`)
		if bad := browsertest.Eval[string](b, "injected markup", injected); bad != "" {
			t.Errorf("the queue after a live update: %s", bad)
		}
		if text := browsertest.Eval[string](b, "queue text", `document.querySelector("#queue").innerText`); !strings.Contains(text, `<img src=x onerror="window.xssRan='img'">`) {
			t.Errorf("the payload is not shown as text in the queue:\n%s", text)
		}
	})
	if first == nil {
		t.FailNow()
	}
	// inThread posts a signed message in the first conversation's thread.
	inThread := func(t *testing.T, eventID, user, team, text, micros string) {
		t.Helper()
		now := time.Now()
		ev := threadEvent(eventID, "C0SUPPORT", user, team, text, fmt.Sprintf("%d.%s", now.Unix(), micros), firstTS, "")
		if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), ev); code != http.StatusOK {
			t.Fatalf("signed Slack event: %d", code)
		}
	}

	t.Run("search finds a conversation by a word in a message's body", func(t *testing.T) {
		b := b.For(t)
		inThread(t, "Ev0CONSOLE2", "U0CUST1", "T0ACME", "The frobnicator log says quarkle timeout on every node", "000300")
		waitFor(t, 30*time.Second, "the follow-up stored", func() bool { return len(a.get(t, first.GetId()).GetMessages()) == 2 })
		if strings.Contains(a.get(t, first.GetId()).GetConversation().GetSubject(), "quarkle") {
			t.Fatal("the word is in the subject: the test would not show a search of the body")
		}
		b.Step("search for the word",
			chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#q")),
			chromedp.SendKeys(css("#q"), "quarkle"), chromedp.Submit(css("#filters")),
			chromedp.WaitVisible(css("#queue, p.empty")))
		rows := browsertest.Eval[[]string](b, "hits", `[...document.querySelectorAll("#queue tr[data-id]")].map(tr => tr.dataset.id)`)
		marked := browsertest.Eval[string](b, "marked word", `[...document.querySelectorAll("#queue mark")].map(m => m.textContent).join(",")`)
		loc := b.Read("location", chromedp.Location())
		if len(rows) != 1 || rows[0] != first.GetId() {
			t.Errorf("searching quarkle found %v, want only %s", rows, first.GetId())
		}
		if !strings.EqualFold(marked, "quarkle") {
			t.Errorf("marked words %q, want quarkle", marked)
		}
		if u, err := url.Parse(loc); err != nil || u.Query().Get("q") != "quarkle" {
			t.Errorf("the search is not a shareable URL: %s", loc)
		}
	})

	// The calendar's override: who gave their shift to whom, and when.
	var (
		overrideFrom, overrideWith string
		overrideStart, overrideEnd time.Time
	)
	t.Run("an override made in the calendar is what sidekick oncall says", func(t *testing.T) {
		b := b.For(t)
		hero, err := a.rotation.WhoIsOnCall(rpcCtx(t), &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
		if err != nil {
			t.Fatal(err)
		}
		from := hero.GetOnCall().GetPerson().GetId()
		with := "bob"
		if from == with {
			with = "carol"
		}
		// Within the hero's shift, from a minute ago for two hours, in the
		// rotation's zone as the form reads it.
		london, err := time.LoadLocation("Europe/London")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now().Truncate(time.Minute).Add(-time.Minute)
		if s := hero.GetOnCall().GetShift().GetStart().AsTime(); start.Before(s) {
			start = s
		}
		end := start.Add(2 * time.Hour)
		if e := hero.GetOnCall().GetShift().GetEnd().AsTime(); end.After(e) {
			end = e
		}
		form := "2006-01-02T15:04"
		b.Step("fill in the override",
			chromedp.Navigate(base+"/calendar"), chromedp.WaitVisible(css("#override-form")),
			chromedp.SetValue(css(`#override-form select[name=rotation]`), "hero"),
			chromedp.SetValue(css(`#override-form select[name=kind]`), "replace"),
			chromedp.SendKeys(css(`#override-form input[name=person]`), from),
			chromedp.SendKeys(css(`#override-form input[name=with_person]`), with),
			chromedp.SetValue(css(`#override-form input[name=start]`), start.In(london).Format(form)),
			chromedp.SetValue(css(`#override-form input[name=end]`), end.In(london).Format(form)),
			chromedp.SendKeys(css(`#override-form input[name=note]`), xssAll),
		)
		b.Submit("create the override", "#override-form")
		flash := browsertest.Eval[string](b, "flash", `(document.querySelector("p.flash, .error") || {}).textContent || document.body.innerText`)
		if flash != "Override created." {
			t.Fatalf("calendar after the form: %q", flash)
		}
		if bad := browsertest.Eval[string](b, "injected markup", injected); bad != "" {
			t.Errorf("the calendar with the override's note: %s", bad)
		}
		got := oncallCLI(t, stack)
		if got.Role != "hero" || got.Person.ID != with || !strings.Contains(strings.ToLower(got.Reason), "override") {
			t.Errorf("sidekick oncall after the calendar's override of %s by %s: %+v", from, with, got)
		}
		overrideFrom, overrideWith, overrideStart, overrideEnd = from, with, start, end
	})

	t.Run("a swap made in the calendar is two overrides shown and deleted together", func(t *testing.T) {
		b := b.For(t)
		london, err := time.LoadLocation("Europe/London")
		if err != nil {
			t.Fatal(err)
		}
		// The next two weeks' heroes swap their whole shifts.
		from := time.Now().Add(7 * 24 * time.Hour)
		shifts, err := a.rotation.ListShifts(rpcCtx(t), &rotationv1.ListShiftsRequest{Rotation: "hero",
			From: timestamppb.New(from), To: timestamppb.New(from.Add(21 * 24 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		var sides []*rotationv1.Shift
		for _, sh := range shifts.GetShifts() {
			if sh.GetStart().AsTime().After(from) && sh.GetReason() == rotationv1.Reason_REASON_ROTATION && len(sides) < 2 {
				sides = append(sides, sh)
			}
		}
		if len(sides) != 2 || sides[0].GetPersonId() == sides[1].GetPersonId() {
			t.Fatalf("two shifts of two people to swap: %v", shifts.GetShifts())
		}
		form := "2006-01-02T15:04"
		fill := func(aStart, bStart time.Time) {
			b.Step("fill in the swap",
				chromedp.Navigate(base+"/calendar"), chromedp.WaitVisible(css("#swap-form")),
				chromedp.SetValue(css(`#swap-form select[name=rotation]`), "hero"),
				chromedp.SendKeys(css(`#swap-form input[name=a]`), sides[0].GetPersonId()),
				chromedp.SetValue(css(`#swap-form input[name=a_start]`), aStart.In(london).Format(form)),
				chromedp.SendKeys(css(`#swap-form input[name=b]`), sides[1].GetPersonId()),
				chromedp.SetValue(css(`#swap-form input[name=b_start]`), bStart.In(london).Format(form)),
				chromedp.SendKeys(css(`#swap-form input[name=note]`), "school play "+xssImg),
			)
			b.Submit("swap", "#swap-form")
		}
		// Rotation refuses what it refuses the CLI: each gives up the
		// other's shift.
		fill(sides[1].GetStart().AsTime(), sides[0].GetStart().AsTime())
		refused := browsertest.Eval[string](b, "the answer", `(document.querySelector(".error") || document.body).textContent`)
		if !strings.Contains(refused, "Swapping the shifts failed:") || !strings.Contains(refused, "is not on duty") {
			t.Errorf("a swap of shifts that are not the people's: the page says %q", refused)
		}
		fill(sides[0].GetStart().AsTime(), sides[1].GetStart().AsTime())
		flash := browsertest.Eval[string](b, "flash", `(document.querySelector("p.flash, .error") || {}).textContent || document.body.innerText`)
		if flash != "Swap created: two overrides, one for each side." {
			t.Fatalf("calendar after the swap form: %q", flash)
		}
		list, err := a.rotation.ListOverrides(rpcCtx(t), &rotationv1.ListOverridesRequest{Rotation: "hero",
			From: sides[0].GetStart(), To: sides[1].GetEnd()})
		if err != nil {
			t.Fatal(err)
		}
		var swap string
		var swapped []string
		for _, o := range list.GetOverrides() {
			if o.GetSwapId() != "" {
				swap = o.GetSwapId()
				swapped = append(swapped, o.GetWithPersonId()+" for "+o.GetPersonId())
			}
		}
		if want := []string{sides[1].GetPersonId() + " for " + sides[0].GetPersonId(), sides[0].GetPersonId() + " for " + sides[1].GetPersonId()}; !slices.Equal(swapped, want) {
			t.Fatalf("rotation's overrides after the swap: %v, want %v", swapped, want)
		}
		row := css(`#swaps tr[data-swap="` + swap + `"]`)
		b.Step("see the swap", chromedp.WaitVisible(row))
		if n := browsertest.Eval[int](b, "sides shown", `document.querySelectorAll('#swaps tr[data-swap="`+swap+`"] .side').length`); n != 2 {
			t.Errorf("the swap's row shows %d sides, want both", n)
		}
		if bad := browsertest.Eval[string](b, "injected markup", injected); bad != "" {
			t.Errorf("the calendar with the swap's note: %s", bad)
		}
		b.Submit("delete both sides", `#swaps tr[data-swap="`+swap+`"] form`)
		list, err = a.rotation.ListOverrides(rpcCtx(t), &rotationv1.ListOverridesRequest{Rotation: "hero",
			From: sides[0].GetStart(), To: sides[1].GetEnd()})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.GetOverrides() {
			if o.GetSwapId() == swap {
				t.Errorf("a side of the deleted swap is left: %v", o)
			}
		}
	})

	t.Run("no payload runs or becomes a link on any page", func(t *testing.T) {
		b := b.For(t)
		// An email whose subject and sender name are payloads.
		now := time.Now()
		mail := rawEmail(`"<img src=x onerror=window.xssRan=1>" <mallory@evil.example>`, "support@sidekick.test", xssScript+" "+xssImg,
			"xss-1@evil.example", now, xssAll)
		if err := fakes.SendMail(stack.SMTPAddr, "mallory@evil.example", []string{"support@sidekick.test"}, mail); err != nil {
			t.Fatalf("email over SMTP: %v", err)
		}
		var xssConv *supportv1.Conversation
		waitFor(t, 30*time.Second, "the payloads' conversations", func() bool {
			xssConv = a.byThread(t, supportv1.Channel_CHANNEL_SLACK, "slack:T0DEMO/C0SUPPORT/"+xssTS)
			return xssConv != nil && len(a.list(t, supportv1.Channel_CHANNEL_EMAIL)) == 1
		})
		emailConv := a.list(t, supportv1.Channel_CHANNEL_EMAIL)[0]
		// Staff write payloads too: a note, a handoff note, a tag.
		b.Step("open the payloads' conversation", chromedp.Navigate(base+"/conversations/"+xssConv.GetId()), chromedp.WaitVisible(css("#note-form")))
		b.Step("write a note", chromedp.SendKeys(css("#note-form textarea[name=text]"), "note "+xssAll))
		b.Submit("add the note", "#note-form")
		b.Step("write a handoff note", chromedp.SendKeys(css("#note-form textarea[name=text]"), "handoff "+xssAll), chromedp.Click(css("#note-form input[name=handoff]")))
		b.Submit("add the handoff note", "#note-form")
		b.Step("write a tag", chromedp.SendKeys(css("#tag-form input[name=add]"), xssImg))
		b.Submit("add the tag", "#tag-form")
		tagged := browsertest.Eval[string](b, "flash", `(document.querySelector("p.flash, .error") || {}).textContent || ""`)
		conv := a.get(t, xssConv.GetId())
		if len(conv.GetNotes()) != 2 {
			t.Errorf("%d notes stored, want the note and the handoff note", len(conv.GetNotes()))
		}
		// Tags are kept in lower case.
		if !slices.Contains(conv.GetConversation().GetTags(), strings.ToLower(xssImg)) {
			t.Errorf("tags stored %q (the page said %q), want the payload", conv.GetConversation().GetTags(), tagged)
		}
		today := time.Now().UTC().Format(time.DateOnly)
		pages := []struct{ name, path, shows string }{
			{"queue", "/", `<script>window.xssRan="script"</script>`},
			{"slack conversation", "/conversations/" + xssConv.GetId(), `[docs](javascript:window.xssRan='link')`},
			{"email conversation", "/conversations/" + emailConv.GetId(), `<img src=x onerror="window.xssRan='img'">`},
			{"customer", "/customers/xss-co", `<script>window.xssRan="script"</script>`},
			{"search", "/?q=payload", `payload`},
			{"closed and all", "/?status=all", `<img src=x onerror="window.xssRan='img'">`},
			{"calendar", "/calendar", `javascript:window.xssRan='link'`},
			{"on call", "/oncall", ""},
			{"reports", "/reports?from=" + today + "&to=" + today, ""},
		}
		for _, p := range pages {
			b.Step("open the "+p.name+" page", chromedp.Navigate(base+p.path), chromedp.WaitReady(css("main")))
			if bad := browsertest.Eval[string](b, "injected markup", injected); bad != "" {
				t.Errorf("%s page: %s", p.name, bad)
			}
			if text := browsertest.Eval[string](b, "page text", `document.body.innerText`); !strings.Contains(text, p.shows) {
				t.Errorf("%s page does not show the payload %s as text:\n%s", p.name, p.shows, text)
			}
		}
	})

	// After the pages above, which show the override's note.
	t.Run("an override deleted in the calendar is gone from sidekick oncall", func(t *testing.T) {
		b := b.For(t)
		from, with := overrideFrom, overrideWith
		if from == "" {
			t.Skip("no override was made in the calendar")
		}
		b.Step("open the calendar", chromedp.Navigate(base+"/calendar"), chromedp.WaitVisible(css("#overrides")))
		list, err := a.rotation.ListOverrides(rpcCtx(t), &rotationv1.ListOverridesRequest{Rotation: "hero",
			From: timestamppb.New(overrideStart), To: timestamppb.New(overrideEnd)})
		if err != nil {
			t.Fatal(err)
		}
		var id string
		for _, o := range list.GetOverrides() {
			if o.GetPersonId() == from && o.GetWithPersonId() == with && o.GetSwapId() == "" {
				id = o.GetId()
			}
		}
		if id == "" {
			t.Fatalf("rotation has no override of %s by %s: %v", from, with, list.GetOverrides())
		}
		b.Submit("delete the override", `#overrides form[action$="/calendar/overrides/`+id+`/delete"]`)
		flash := browsertest.Eval[string](b, "flash", `(document.querySelector("p.flash, .error") || {}).textContent || document.body.innerText`)
		if flash != "Override deleted." {
			t.Errorf("calendar after deleting the override: %q", flash)
		}
		got := oncallCLI(t, stack)
		if got.Role != "hero" || got.Person.ID != from || strings.Contains(strings.ToLower(got.Reason), "override") {
			t.Errorf("sidekick oncall after deleting the calendar's override of %s by %s: %+v", from, with, got)
		}
	})

	t.Run("the reports page says what sidekick report --json says", func(t *testing.T) {
		b := b.For(t)
		// A staff reply, so the first-response figures are not all zero.
		inThread(t, "Ev0CONSOLE3", "U0BOB", "T0DEMO", "Looking into it now", "000400")
		waitFor(t, 30*time.Second, "the first response recorded", func() bool {
			return a.get(t, first.GetId()).GetConversation().GetFirstResponseAt() != nil
		})
		today := time.Now().UTC()
		day, next := today.Format(time.DateOnly), today.AddDate(0, 0, 1).Format(time.DateOnly)
		b.Step("open the reports page", chromedp.Navigate(base+"/reports?from="+day+"&to="+day), chromedp.WaitVisible(css("#by-tier-response")))
		page := browsertest.Eval[map[string][][]string](b, "the report's tables", `(() => {
			const rows = sel => [...document.querySelectorAll(sel)].map(tr => [...tr.cells].map(td => td.textContent.trim()));
			return {
				channel: rows("#by-channel table.legend tr"),
				tier: rows("#by-tier table.legend tr"),
				category: rows("#by-category table.legend tr"),
				response: rows("#by-tier-response tbody tr"),
				byCategory: rows("#by-category-response tbody tr"),
				dayChannel: rows("#per-day-channel tr"),
				dayCategory: rows("#per-day-category tr"),
				dayTier: rows("#per-day-tier tr"),
			};
		})()`)
		var out bytes.Buffer
		if err := cli.Run(context.Background(), []string{"report", "--json", "--from", day, "--to", next, "--addr", stack.GRPCAddr},
			cli.IO{Stdout: &out, Stderr: io.Discard}); err != nil {
			t.Fatalf("sidekick report --json: %v", err)
		}
		var rep triagev1.SummaryResponse
		if err := protojson.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("sidekick report --json: %v\n%s", err, out.String())
		}
		counts := func(cs []*triagev1.Count) [][]string {
			var rows [][]string
			for _, c := range cs {
				rows = append(rows, []string{c.GetKey(), strconv.FormatInt(c.GetCount(), 10)})
			}
			return rows
		}
		same := func(what string, got, want [][]string) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: the page shows %v, sidekick report %v", what, got, want)
			}
		}
		same("by channel", page["channel"], counts(rep.GetByChannel()))
		same("by tier", page["tier"], counts(rep.GetByTier()))
		same("by category", page["category"], counts(rep.GetByCategory()))
		// Per tier: conversations, answered, great, okay, late, breached,
		// closed (the figures; the page adds shares and durations).
		var want [][]string
		for _, r := range rep.GetResponse() {
			want = append(want, nums(r.GetConversations(), r.GetResponded(), r.GetGreat(), r.GetOkay(), r.GetLate(), r.GetBreached(), r.GetResolution().GetClosed()))
		}
		same("first response by tier", pick(page["response"], 1, 2, 5, 6, 7, 8, 9), want)
		want = nil
		for _, g := range rep.GetByCategoryResponse() {
			want = append(want, append([]string{g.GetKey()}, nums(g.GetConversations(), g.GetResponded(), g.GetGreat(), g.GetOkay(), g.GetLate(), g.GetBreached(), g.GetResolution().GetClosed())...))
		}
		same("first response by category", pick(page["byCategory"], 0, 1, 2, 5, 6, 7, 8, 9), want)
		// Per day: a header of the keys, then a row a day (the day, its
		// total, its count of each key).
		perDay := func(totals []*triagev1.Count, of func(*triagev1.DayCounts) []*triagev1.Count) [][]string {
			rows := [][]string{{"Day", "All"}}
			for _, c := range totals {
				rows[0] = append(rows[0], c.GetKey())
			}
			for _, d := range rep.GetByDay() {
				n := map[string]int64{}
				for _, c := range of(d) {
					n[c.GetKey()] = c.GetCount()
				}
				row := []string{d.GetDay(), strconv.FormatInt(d.GetConversations(), 10)}
				for _, c := range totals {
					row = append(row, strconv.FormatInt(n[c.GetKey()], 10))
				}
				rows = append(rows, row)
			}
			return rows
		}
		same("per day by channel", page["dayChannel"], perDay(rep.GetByChannel(), (*triagev1.DayCounts).GetByChannel))
		same("per day by category", page["dayCategory"], perDay(rep.GetByCategory(), (*triagev1.DayCounts).GetByCategory))
		same("per day by tier", page["dayTier"], perDay(rep.GetByTier(), (*triagev1.DayCounts).GetByTier))
		if len(rep.GetByDay()) != 1 || rep.GetByDay()[0].GetDay() != day {
			t.Errorf("sidekick report's days for %s: %v", day, rep.GetByDay())
		}
		var total int64
		for _, c := range rep.GetByChannel() {
			total += c.GetCount()
		}
		if total < 3 || len(rep.GetByChannel()) < 2 || len(rep.GetByTier()) < 2 || rep.GetResponse()[0].GetResponded()+rep.GetResponse()[2].GetResponded() < 1 {
			t.Errorf("the report is too thin to compare (%d conversations): %s", total, out.String())
		}
	})

	t.Run("each action of a conversation page reaches triage", func(t *testing.T) {
		b := b.For(t)
		page := base + "/conversations/" + first.GetId()
		act := func(what, form string, fill ...chromedp.Action[chromedp.Void]) string {
			t.Helper()
			b.Step("open the conversation for "+what, append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(page), chromedp.WaitVisible(css(form))}, fill...)...)
			b.Submit(what, form)
			return browsertest.Eval[string](b, "flash", `(document.querySelector("p.flash, .error") || {}).textContent || ""`)
		}
		audited := func(action string) bool {
			return slices.ContainsFunc(a.get(t, first.GetId()).GetAudit(), func(e *triagev1.AuditEntry) bool { return e.GetAction() == action })
		}
		flashes := []string{
			act("assign", "#assign-form", chromedp.SetValue(css(`#assign-form input[name=assignee]`), "alice")),
			act("reply", "#reply-form", chromedp.SendKeys(css(`#reply-form textarea[name=text]`), "We are on it: which version are you on?")),
			act("escalate", "#escalate-form", chromedp.SendKeys(css(`#escalate-form input[name=reason]`), "stuck"),
				chromedp.SetValue(css(`#escalate-form select[name=team]`), "platform")),
			act("close", "#close-form", chromedp.SetValue(css(`#close-form select[name=reason]`), "duplicate")),
		}
		closed := a.get(t, first.GetId()).GetConversation()
		flashes = append(flashes, act("reopen", "#reopen-form"))
		t.Logf("the pages answered %q", flashes)
		got := a.get(t, first.GetId())
		for _, f := range flashes {
			if f == "" || strings.Contains(f, "failed") {
				t.Errorf("an action's answer: %q (all: %q)", f, flashes)
			}
		}
		if got.GetConversation().GetAssignee() != "alice" {
			t.Errorf("assignee %q after assigning alice", got.GetConversation().GetAssignee())
		}
		if !slices.ContainsFunc(got.GetMessages(), func(m *supportv1.InboundMessage) bool {
			return m.GetText() == "We are on it: which version are you on?" && m.GetAuthor().GetRole() == supportv1.AuthorRole_AUTHOR_ROLE_STAFF
		}) {
			t.Error("the reply is not among the conversation's messages as a staff message")
		}
		if !audited("escalated") {
			t.Errorf("no escalation in the audit trail: %v", got.GetAudit())
		}
		if closed.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED || closed.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_DUPLICATE {
			t.Errorf("after closing as a duplicate: %v %v", closed.GetStatus(), closed.GetCloseReason())
		}
		if got.GetConversation().GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
			t.Errorf("still closed after reopening")
		}
	})
	t.Run("a reply Slack refused is sent again from the conversation page", func(t *testing.T) {
		b := b.For(t)
		page := base + "/conversations/" + first.GetId()
		text := "Could you send us the frobnicator log of one node?"
		// The bot is taken out of the customer's channel: Slack answers
		// not_in_channel to the reply, a failure no retry of ingest-slack
		// gets past.
		slack.RemoveFromChannel("C0SUPPORT")
		b.Step("write a reply", chromedp.Navigate(page), chromedp.WaitVisible(css("#reply-form")),
			chromedp.SendKeys(css(`#reply-form textarea[name=text]`), text))
		b.Submit("send the reply", "#reply-form")
		delivery := func() *triagev1.OutboundDelivery {
			resp := a.get(t, first.GetId())
			for _, m := range resp.GetMessages() {
				if m.GetText() != text {
					continue
				}
				for _, d := range resp.GetDeliveries() {
					if d.GetMessageId() == m.GetId() {
						return d
					}
				}
			}
			return nil
		}
		var d *triagev1.OutboundDelivery
		waitFor(t, 30*time.Second, "Slack's refusal recorded", func() bool {
			d = delivery()
			return d.GetState() == triagev1.DeliveryState_DELIVERY_STATE_FAILED
		})
		footer := `document.querySelector('[id="delivery-` + d.GetOutboundId() + `"]')`
		b.Step("see the reply failed", chromedp.Navigate(page), chromedp.WaitVisible(css(`[id="delivery-`+d.GetOutboundId()+`"].delivery-failed`)))
		if shown := browsertest.Eval[string](b, "the delivery", footer+`.textContent`); !strings.Contains(shown, "Not delivered:") || !strings.Contains(shown, "not_in_channel") {
			t.Errorf("the failed reply's footer says %q, want Slack's not_in_channel", shown)
		}

		slack.ReturnToChannel("C0SUPPORT")
		b.Submit("send it again", `[id="delivery-`+d.GetOutboundId()+`"] form`)
		if flash := browsertest.Eval[string](b, "flash", `(document.querySelector("p.flash, .error") || {}).textContent || ""`); flash != "Sending the reply again." {
			t.Errorf("the page after Send again: %q", flash)
		}
		waitFor(t, 30*time.Second, "the reply sent", func() bool {
			d = delivery()
			return d.GetState() == triagev1.DeliveryState_DELIVERY_STATE_SENT
		})
		b.Step("see the reply sent", chromedp.Navigate(page), chromedp.WaitVisible(css(`[id="delivery-`+d.GetOutboundId()+`"].delivery-sent a`)))
		shown := browsertest.Eval[string](b, "the delivery", footer+`.textContent`)
		link := browsertest.Eval[string](b, "the link", footer+`.querySelector("a").getAttribute("href")`)
		if !strings.HasPrefix(strings.TrimSpace(shown), "Sent to the customer") || link == "" || link != d.GetPermalink() {
			t.Errorf("the sent reply's footer says %q linking %q; triage's permalink %q", shown, link, d.GetPermalink())
		}
		var posts []fakes.SlackMessage
		for _, m := range slack.Posted() {
			if strings.Contains(m.Text, text) || strings.Contains(string(m.Blocks), text) {
				posts = append(posts, m)
			}
		}
		if n := slack.MetadataPosts("outbound_id", d.GetOutboundId()); n != 1 || len(posts) != 1 {
			t.Fatalf("Slack holds the reply %d times (%d with its outbound id), want once", len(posts), n)
		}
		if posts[0].Channel != "C0SUPPORT" || posts[0].ThreadTS != firstTS || posts[0].TS != d.GetProviderId() {
			t.Errorf("the reply was posted as %+v, want in the customer's thread %s with triage's provider id %s", posts[0], firstTS, d.GetProviderId())
		}
	})
}

// nums renders counts as the page shows them.
func nums(ns ...int64) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strconv.FormatInt(n, 10)
	}
	return out
}

// pick takes the leading number of the given cells of each row ("3 60%"
// is 3).
func pick(rows [][]string, cells ...int) [][]string {
	var out [][]string
	for _, r := range rows {
		var row []string
		for _, c := range cells {
			v := ""
			if c < len(r) {
				v, _, _ = strings.Cut(r[c], " ")
			}
			row = append(row, v)
		}
		out = append(out, row)
	}
	return out
}
