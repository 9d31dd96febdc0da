package devstack

import (
	"io"
	"net/mail"
	"strings"
	"testing"

	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

func TestClientEndpoints(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want Endpoints
	}{
		"defaults": {nil, Endpoints{GRPCAddr: "127.0.0.1:9090", NATSURL: "nats://127.0.0.1:4222", ConsoleURL: "http://127.0.0.1:8080/console"}},
		"the dev stack moved": {
			map[string]string{"SIDEKICK_GRPC_ADDR": "127.0.0.1:9190", "SIDEKICK_NATS_ADDR": "127.0.0.1:4322", "SIDEKICK_HTTP_ADDR": "127.0.0.1:8180"},
			Endpoints{GRPCAddr: "127.0.0.1:9190", NATSURL: "nats://127.0.0.1:4322", ConsoleURL: "http://127.0.0.1:8180/console"},
		},
		"listening on every interface": {
			map[string]string{"SIDEKICK_GRPC_ADDR": ":9190", "SIDEKICK_HTTP_ADDR": "0.0.0.0:8180", "SIDEKICK_NATS_ADDR": "[::]:4322"},
			Endpoints{GRPCAddr: "127.0.0.1:9190", NATSURL: "nats://127.0.0.1:4322", ConsoleURL: "http://127.0.0.1:8180/console"},
		},
		"explicit client settings win": {
			map[string]string{"SIDEKICK_ADDR": "rotation:9090", "SIDEKICK_GRPC_ADDR": ":9190", "SIDEKICK_NATS_URL": "nats://nats:4222",
				"SIDEKICK_CONSOLE_URL": "https://sidekick.example.com/console"},
			Endpoints{GRPCAddr: "rotation:9090", NATSURL: "nats://nats:4222", ConsoleURL: "https://sidekick.example.com/console"},
		},
	} {
		if got := ClientEndpoints(tc.env); got != tc.want {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
}

// TestCustomerInboxPrintsTheReply: the dev stack's customer inbox shows a
// reply as the customer would read it: who from, what it answers, and the
// text part of a multipart/alternative body, decoded.
func TestCustomerInboxPrintsTheReply(t *testing.T) {
	raw := "From: \"Farah (Demo Support)\" <support@sidekick.localhost>\r\n" +
		"To: <jo@acme.example>\r\n" +
		"Subject: =?utf-8?q?Re:_Exports_f=C3=A4iling?=\r\n" +
		"In-Reply-To: <q1@acme.example>\r\n" +
		"Content-Type: multipart/alternative; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Which region=3F\r\nThanks\r\n" +
		"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Which region?</p>\r\n--B--\r\n"
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(msg.Body)
	var out strings.Builder
	printMail(&out, fakes.Mail{To: []string{"jo@acme.example"}, Data: []byte(raw), Header: msg.Header, Body: body})
	for _, want := range []string{"email to jo@acme.example", "Subject:     Re: Exports fäiling", "In-Reply-To: <q1@acme.example>", "| Which region?\n  | Thanks\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inbox output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "<p>") {
		t.Errorf("the HTML part was printed:\n%s", out.String())
	}
}
