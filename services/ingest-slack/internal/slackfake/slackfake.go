// Package slackfake is a fake of the Slack Web API and of Socket Mode at
// the wire, for tests: users.info, chat.getPermalink, auth.test and
// apps.connections.open answer as Slack documents them, and the WebSocket
// URL handed out speaks the Socket Mode protocol (hello, envelopes, acks).
// Point slack-go at it with slack.OptionAPIURL(server.APIURL()).
package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu        sync.Mutex
	users     map[string]json.RawMessage
	calls     map[string]int
	failUsers string
	holdUsers chan struct{}
	failAuth  string
	domain    string
	conns     chan *Conn
}

// Start starts a fake that is closed when the test ends. domain is the
// workspace's subdomain used in permalinks ("acme" → acme.slack.com).
func Start(t testing.TB, domain string) *Server {
	t.Helper()
	s := &Server{users: map[string]json.RawMessage{}, calls: map[string]int{}, domain: domain, conns: make(chan *Conn, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/users.info", s.usersInfo)
	mux.HandleFunc("/api/chat.getPermalink", s.getPermalink)
	mux.HandleFunc("/api/auth.test", s.authTest)
	mux.HandleFunc("/api/apps.connections.open", s.connectionsOpen)
	mux.HandleFunc("/link/", s.socket)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// APIURL is the Web API base URL for slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// AddUser makes users.info answer for the user object given as JSON (the
// "user" field of Slack's users.info response); its "id" is the key.
func (s *Server) AddUser(userJSON string) {
	var u struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(userJSON), &u); err != nil || u.ID == "" {
		panic(fmt.Sprintf("slackfake: bad user JSON: %v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = json.RawMessage(userJSON)
}

// FailUsers makes users.info answer {"ok":false,"error":code}; "" restores
// normal answers.
func (s *Server) FailUsers(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failUsers = code
}

// HoldUsers makes users.info calls wait until release is called (or the
// test's server closes): a caller that must not wait for the Web API
// would hang.
func (s *Server) HoldUsers() (release func()) {
	hold := make(chan struct{})
	s.mu.Lock()
	s.holdUsers = hold
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.holdUsers = nil
			s.mu.Unlock()
			close(hold)
		})
	}
}

// FailAuthTest makes auth.test answer {"ok":false,"error":code}; ""
// restores normal answers.
func (s *Server) FailAuthTest(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAuth = code
}

// Calls returns how many times a Web API method was called.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *Server) count(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[strings.TrimPrefix(r.URL.Path, "/api/")]++
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func authorized(r *http.Request, prefix string) bool {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" {
		_ = r.ParseForm()
		tok = r.Form.Get("token")
	}
	return strings.HasPrefix(tok, prefix)
}

func (s *Server) usersInfo(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !authorized(r, "xoxb-") {
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	}
	_ = r.ParseForm()
	s.mu.Lock()
	hold := s.holdUsers
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	u, ok := s.users[r.Form.Get("user")]
	fail := s.failUsers
	s.mu.Unlock()
	switch {
	case fail != "":
		writeJSON(w, map[string]any{"ok": false, "error": fail})
	case !ok:
		writeJSON(w, map[string]any{"ok": false, "error": "user_not_found"})
	default:
		writeJSON(w, map[string]any{"ok": true, "user": u})
	}
}

func (s *Server) getPermalink(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !authorized(r, "xoxb-") {
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	}
	_ = r.ParseForm()
	ch, ts := r.Form.Get("channel"), r.Form.Get("message_ts")
	if ch == "" || ts == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	writeJSON(w, map[string]any{
		"ok": true, "channel": ch,
		"permalink": "https://" + s.domain + ".slack.com/archives/" + ch + "/p" + strings.ReplaceAll(ts, ".", ""),
	})
}

func (s *Server) authTest(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !authorized(r, "xoxb-") {
		writeJSON(w, map[string]any{"ok": false, "error": "not_authed"})
		return
	}
	s.mu.Lock()
	fail := s.failAuth
	s.mu.Unlock()
	if fail != "" {
		writeJSON(w, map[string]any{"ok": false, "error": fail})
		return
	}
	writeJSON(w, map[string]any{
		"ok": true, "url": "https://" + s.domain + ".slack.com/", "team": s.domain, "user": "sidekick",
		"team_id": "T061EG9R6", "user_id": "U0SIDEKICK", "bot_id": "B0SIDEKICK",
	})
}

func (s *Server) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	if !authorized(r, "xapp-") {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	writeJSON(w, map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/?ticket=fake-ticket&app_id=A0MDYCDME"})
}

// Conn is one Socket Mode connection from the app under test.
type Conn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	acks chan Ack
	done chan struct{}
}

// Ack is what the app answered to an envelope.
type Ack struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
}

func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &Conn{ws: ws, acks: make(chan Ack, 64), done: make(chan struct{})}
	hello := map[string]any{
		"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": "A0MDYCDME"},
	}
	if err := c.write(websocket.TextMessage, hello); err != nil {
		ws.Close()
		return
	}
	go c.ping()
	select {
	case s.conns <- c:
	default:
	}
	defer close(c.done)
	defer ws.Close()
	for {
		var a Ack
		if err := ws.ReadJSON(&a); err != nil {
			return
		}
		c.acks <- a
	}
}

func (c *Conn) write(kind int, v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if kind == websocket.PingMessage {
		return c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
	}
	return c.ws.WriteJSON(v)
}

// ping keeps slack-go's dead-connection timer happy, as Slack does.
func (c *Conn) ping() {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if err := c.write(websocket.PingMessage, nil); err != nil {
			return
		}
		select {
		case <-c.done:
			return
		case <-t.C:
		}
	}
}

// Accept waits for the app to connect.
func (s *Server) Accept(t testing.TB, timeout time.Duration) *Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(timeout):
		t.Fatal("slackfake: the app did not open a Socket Mode connection")
		return nil
	}
}

// Send delivers an envelope of type typ ("events_api", "interactive",
// "slash_commands") with payload, as Slack does.
func (c *Conn) Send(envelopeID, typ string, payload json.RawMessage, retryAttempt int) error {
	return c.write(websocket.TextMessage, map[string]any{
		"envelope_id": envelopeID, "type": typ, "payload": payload,
		"accepts_response_payload": typ != "events_api", "retry_attempt": retryAttempt, "retry_reason": "",
	})
}

// Ack waits for the next acknowledgement.
func (c *Conn) Ack(timeout time.Duration) (Ack, bool) {
	select {
	case a := <-c.acks:
		return a, true
	case <-time.After(timeout):
		return Ack{}, false
	}
}

// Close drops the connection.
func (c *Conn) Close() { _ = c.ws.Close() }
