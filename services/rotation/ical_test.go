package rotation

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// TestICalFeeds exercises GET /ical/rotations/{id}.ics and
// /ical/people/{id}.ics through the service's HTTP handler.
func TestICalFeeds(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	london, _ := time.LoadLocation("Europe/London")
	now := time.Date(2026, 3, 23, 10, 0, 0, 0, london)
	svc := newService(t, url, clock.NewFake(now))
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}

	// Before any configuration: 503, so a calendar client retries later.
	for _, path := range []string{"/ical/rotations/hero.ics", "/ical/people/alice.ics"} {
		if code, _, _ := get(path); code != http.StatusServiceUnavailable {
			t.Errorf("GET %s before any configuration: %d, want 503", path, code)
		}
	}

	if _, err := svc.Apply(ctx, handbookOrg(t), false, "test"); err != nil {
		t.Fatal(err)
	}
	at := func(d, h int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 4, d, h, 0, 0, 0, london))
	}
	if _, err := svc.api.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{
		Rotation: "hero", PersonA: "alice", ShiftAStart: at(1, 9), ShiftAEnd: at(2, 9),
		PersonB: "bob", ShiftBStart: at(8, 9), ShiftBEnd: at(9, 9),
	}); err != nil {
		t.Fatal(err)
	}

	code, ctype, body := get("/ical/rotations/hero.ics")
	if code != http.StatusOK || ctype != "text/calendar; charset=utf-8" {
		t.Fatalf("GET hero.ics: %d %q", code, ctype)
	}
	if !strings.HasPrefix(body, "BEGIN:VCALENDAR\r\n") || !strings.HasSuffix(body, "END:VCALENDAR\r\n") || !strings.Contains(body, "X-WR-CALNAME:Sidekick: Support Hero\r\n") {
		t.Errorf("hero.ics is not a calendar:\n%s", body)
	}
	// Four weeks back and 90 days ahead of now: 18 weekly shifts, two of
	// them split by the swap into four more events.
	if n := strings.Count(body, "BEGIN:VEVENT"); n < 16 {
		t.Errorf("hero.ics has %d events", n)
	}
	for _, want := range []string{
		// Bob's swapped day, standing in for alice.
		"DTSTART:20260401T080000Z\r\nDTEND:20260402T080000Z\r\nSUMMARY:Bob Brown on call: hero (for alice)\r\n",
		"DTSTART:20260408T080000Z\r\nDTEND:20260409T080000Z\r\nSUMMARY:Alice Anders on call: hero (for bob)\r\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("hero.ics lacks\n%s", want)
		}
	}

	code, ctype, body = get("/ical/people/alice.ics")
	if code != http.StatusOK || ctype != "text/calendar; charset=utf-8" {
		t.Fatalf("GET alice.ics: %d %q", code, ctype)
	}
	if !strings.Contains(body, "X-WR-CALNAME:Sidekick: Alice Anders on call\r\n") || !strings.Contains(body, "SUMMARY:Alice Anders on call: hero (for bob)\r\n") ||
		!strings.Contains(body, "SUMMARY:Alice Anders on call: platform-secondary\r\n") || strings.Contains(body, "Bob Brown") {
		t.Errorf("alice.ics:\n%s", body)
	}

	for _, path := range []string{"/ical/rotations/nope.ics", "/ical/people/nope.ics"} {
		if code, _, _ := get(path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
}
