package slacksig

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// The worked example of Slack's "Verifying requests from Slack" guide: a
// slash command body, its timestamp and the signature Slack computed.
const (
	docSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	docTimestamp = "1531420618"
	docBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	docSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

var docTime = time.Unix(1531420618, 0)

func TestDocumentedExample(t *testing.T) {
	if got := Sign([]byte(docSecret), docTimestamp, []byte(docBody)); got != docSignature {
		t.Fatalf("Sign = %s, want %s", got, docSignature)
	}
	if err := Verify([]byte(docSecret), docTime.Add(30*time.Second), docTimestamp, docSignature, []byte(docBody)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestRejections(t *testing.T) {
	secret, body := []byte(docSecret), []byte(docBody)
	cases := []struct {
		name     string
		now      time.Time
		ts, sig  string
		body     []byte
		want     error
		wantBase error
	}{
		{"no signature", docTime, docTimestamp, "", body, ErrMissing, ErrUnauthorized},
		{"no timestamp", docTime, "", docSignature, body, ErrMissing, ErrUnauthorized},
		{"timestamp not a number", docTime, "15314206l8", docSignature, body, ErrTimestamp, ErrUnauthorized},
		{"negative timestamp", docTime, "-1", docSignature, body, ErrTimestamp, ErrUnauthorized},
		{"six minutes old", docTime.Add(6 * time.Minute), docTimestamp, docSignature, body, ErrStale, ErrUnauthorized},
		{"six minutes ahead", docTime.Add(-6 * time.Minute), docTimestamp, docSignature, body, ErrStale, ErrUnauthorized},
		{"body changed", docTime, docTimestamp, docSignature, append([]byte(docBody), ' '), ErrMismatch, ErrUnauthorized},
		{"timestamp changed", docTime, "1531420619", docSignature, body, ErrMismatch, ErrUnauthorized},
		{"other version", docTime, docTimestamp, "v1=" + docSignature[3:], body, ErrMismatch, ErrUnauthorized},
		{"not hex", docTime, docTimestamp, "v0=zz" + docSignature[5:], body, ErrMismatch, ErrUnauthorized},
		{"truncated", docTime, docTimestamp, docSignature[:len(docSignature)-2], body, ErrMismatch, ErrUnauthorized},
		{"uppercase hex", docTime, docTimestamp, "v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503", body, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(secret, c.now, c.ts, c.sig, c.body)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
			if c.wantBase != nil && !errors.Is(err, c.wantBase) {
				t.Fatalf("%v does not wrap %v", err, c.wantBase)
			}
		})
	}
	if err := Verify([]byte("another secret"), docTime, docTimestamp, docSignature, body); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestSkewBoundary(t *testing.T) {
	secret, body := []byte("s"), []byte("{}")
	ts := strconv.FormatInt(docTime.Unix(), 10)
	sig := Sign(secret, ts, body)
	for _, d := range []time.Duration{MaxSkew, -MaxSkew} {
		if err := Verify(secret, docTime.Add(d), ts, sig, body); err != nil {
			t.Fatalf("skew %s: %v", d, err)
		}
	}
	for _, d := range []time.Duration{MaxSkew + time.Second, -MaxSkew - time.Second} {
		if err := Verify(secret, docTime.Add(d), ts, sig, body); !errors.Is(err, ErrStale) {
			t.Fatalf("skew %s: %v, want ErrStale", d, err)
		}
	}
}

// TestAgreesWithSlackGo checks our verifier against slack-go's own.
func TestAgreesWithSlackGo(t *testing.T) {
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"type":"event_callback","event_id":"Ev1"}`)
	sig := Sign([]byte(docSecret), ts, body)
	hdr := map[string][]string{HeaderTimestamp: {ts}, HeaderSignature: {sig}}
	v, err := slack.NewSecretsVerifier(hdr, docSecret)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = v.Write(body)
	if err := v.Ensure(); err != nil {
		t.Fatalf("slack-go rejects our signature: %v", err)
	}
	if err := Verify([]byte(docSecret), now, ts, sig, body); err != nil {
		t.Fatal(err)
	}
}

// FuzzVerify: whatever the input, Verify never panics, accepts only the
// exact signature of the exact body inside the skew window, and always
// accepts what Sign produced.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(docSecret), docTimestamp, docSignature, []byte(docBody), int64(0))
	f.Add([]byte("k"), "0", "v0=", []byte{}, int64(-301))
	f.Add([]byte(""), "99999999999999999999", "v0=00", []byte("x"), int64(301))
	f.Add([]byte("k"), "+1531420618", docSignature, []byte(docBody), int64(0))
	f.Fuzz(func(t *testing.T, secret []byte, ts, sig string, body []byte, offset int64) {
		now := docTime.Add(time.Duration(offset%1e6) * time.Second)
		err := Verify(secret, now, ts, sig, body)
		if err != nil && !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("error %v does not wrap ErrUnauthorized", err)
		}
		if err == nil {
			if ts == "" || sig == "" {
				t.Fatal("accepted a request without headers")
			}
			n, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil || n <= 0 {
				t.Fatalf("accepted timestamp %q", ts)
			}
			if d := now.Unix() - n; d > 300 || d < -300 {
				t.Fatalf("accepted timestamp %q at %d", ts, now.Unix())
			}
		}
		good := Sign(secret, ts, body)
		verr := Verify(secret, now, ts, good, body)
		n, perr := strconv.ParseInt(ts, 10, 64)
		inWindow := perr == nil && n > 0 && now.Unix()-n <= 300 && n-now.Unix() <= 300
		if inWindow && verr != nil {
			t.Fatalf("rejected its own signature: %v", verr)
		}
		if !inWindow && verr == nil {
			t.Fatalf("accepted timestamp %q outside the window", ts)
		}
	})
}

// TestVerifierReuse checks that a Verifier's pooled MAC state carries
// nothing from one request into the next, also under concurrent use: each
// body verifies against its own signature and only its own.
func TestVerifierReuse(t *testing.T) {
	v := NewVerifier([]byte(docSecret))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				body := []byte(fmt.Sprintf("%s&n=%d-%d", docBody, g, i))
				other := append(bytes.Clone(body), '!')
				sig := Sign([]byte(docSecret), docTimestamp, body)
				if err := v.Verify(docTime, docTimestamp, sig, body); err != nil {
					t.Errorf("goroutine %d, request %d: own signature rejected: %v", g, i, err)
					return
				}
				if err := v.Verify(docTime, docTimestamp, sig, other); !errors.Is(err, ErrMismatch) {
					t.Errorf("goroutine %d, request %d: another body's signature: got %v, want ErrMismatch", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := v.Verify(docTime, docTimestamp, docSignature, []byte(docBody)); err != nil {
		t.Fatalf("documented example after reuse: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	body := []byte(docBody)
	v := NewVerifier([]byte(docSecret))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(docTime, docTimestamp, docSignature, body); err != nil {
			b.Fatal(err)
		}
	}
}
