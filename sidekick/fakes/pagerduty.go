package fakes

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

// PagerDuty is a fake of the PagerDuty Events API v2 endpoint
// (POST /v2/enqueue). It validates events as the API documents it and
// answers 202 {"status":"success","message":"Event processed","dedup_key"}
// for a valid one, generating a dedup key for a trigger without one, and
// 400 {"status":"invalid event","message":"Event object is invalid",
// "errors":[…]} otherwise. Accepted events are recorded.
type PagerDuty struct {
	srv        *httptest.Server
	routingKey string

	mu       sync.Mutex
	events   []PagerDutyEvent
	rejected int
}

// PagerDutyEvent is one accepted Events API v2 event.
type PagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"`
	DedupKey    string            `json:"dedup_key"`
	Payload     *PagerDutyPayload `json:"payload"`
	Client      string            `json:"client"`
	ClientURL   string            `json:"client_url"`
	Links       []struct {
		Href string `json:"href"`
		Text string `json:"text"`
	} `json:"links"`
}

// PagerDutyPayload is the payload of a trigger event.
type PagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp"`
	Component     string         `json:"component"`
	Group         string         `json:"group"`
	Class         string         `json:"class"`
	CustomDetails map[string]any `json:"custom_details"`
}

// NewPagerDuty starts the fake; only events with routingKey are accepted.
func NewPagerDuty(routingKey string) *PagerDuty {
	p := &PagerDuty{routingKey: routingKey}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/enqueue", p.enqueue)
	p.srv = httptest.NewServer(mux)
	return p
}

// URL is the enqueue endpoint (SIDEKICK_PAGERDUTY_URL).
func (p *PagerDuty) URL() string { return p.srv.URL + "/v2/enqueue" }

// Close stops the server.
func (p *PagerDuty) Close() { p.srv.Close() }

// Events returns the accepted events, oldest first.
func (p *PagerDuty) Events() []PagerDutyEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PagerDutyEvent(nil), p.events...)
}

// Rejected returns how many events were answered 400.
func (p *PagerDuty) Rejected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rejected
}

var pagerDutySeverities = map[string]bool{"critical": true, "error": true, "warning": true, "info": true}

func (p *PagerDuty) enqueue(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 512<<10+1))
	var ev PagerDutyEvent
	var errs []string
	switch {
	case err != nil:
		errs = append(errs, "could not read the body")
	case len(body) > 512<<10:
		errs = append(errs, "event is larger than 512 KB")
	default:
		if err := json.Unmarshal(body, &ev); err != nil {
			errs = append(errs, "body is not a JSON event object")
		}
	}
	if len(errs) == 0 {
		errs = p.check(&ev)
	}
	if len(errs) > 0 {
		p.mu.Lock()
		p.rejected++
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
		return
	}
	if ev.DedupKey == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		ev.DedupKey = hex.EncodeToString(b[:])
	}
	p.mu.Lock()
	p.events = append(p.events, ev)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

func (p *PagerDuty) check(ev *PagerDutyEvent) []string {
	var errs []string
	if ev.RoutingKey == "" || ev.RoutingKey != p.routingKey {
		errs = append(errs, "'routing_key' is invalid")
	}
	if len(ev.DedupKey) > 255 {
		errs = append(errs, "'dedup_key' is longer than 255 characters")
	}
	switch ev.EventAction {
	case "trigger":
		switch pl := ev.Payload; {
		case pl == nil:
			errs = append(errs, "'payload' is missing or blank")
		default:
			if pl.Summary == "" || len(pl.Summary) > 1024 {
				errs = append(errs, "'payload.summary' is missing, blank or longer than 1024 characters")
			}
			if pl.Source == "" {
				errs = append(errs, "'payload.source' is missing or blank")
			}
			if !pagerDutySeverities[pl.Severity] {
				errs = append(errs, "'payload.severity' must be critical, error, warning or info")
			}
		}
	case "acknowledge", "resolve":
		if ev.DedupKey == "" {
			errs = append(errs, "'dedup_key' is required for "+ev.EventAction)
		}
	default:
		errs = append(errs, "'event_action' must be trigger, acknowledge or resolve")
	}
	return errs
}
