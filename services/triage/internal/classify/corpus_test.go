package classify

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// example is one labelled support message of testdata/corpus.jsonl.
type example struct {
	ID         string     `json:"id"`
	Channel    string     `json:"channel"`
	Subject    string     `json:"subject"`
	Text       string     `json:"text"`
	Labels     []string   `json:"labels"`
	AuthFailed bool       `json:"auth_failed"`
	Categories []Category `json:"categories"`
	Split      string     `json:"split"`
}

func (e example) input() Input {
	return Input{Channel: e.Channel, Subject: e.Subject, Text: e.Text, Labels: e.Labels, AuthFailed: e.AuthFailed}
}

// loadCorpus returns the training and held-out examples.
func loadCorpus(t testing.TB) (train, test []example) {
	t.Helper()
	f, err := os.Open("testdata/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e example
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("corpus line %q: %v", sc.Text(), err)
		}
		for _, c := range e.Categories {
			if !c.Valid() {
				t.Fatalf("corpus %s: unknown category %q", e.ID, c)
			}
		}
		switch e.Split {
		case "train":
			train = append(train, e)
		case "test":
			test = append(test, e)
		default:
			t.Fatalf("corpus %s: split %q", e.ID, e.Split)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return train, test
}

// newDefault returns a classifier with the default rules and the given
// model.
func newDefault(t testing.TB, m *Model) *Classifier {
	t.Helper()
	rs, err := DefaultRules().Compile()
	if err != nil {
		t.Fatal(err)
	}
	return New(rs, m)
}

// trained returns a classifier with the default rules whose model learned
// the training split.
func trained(t testing.TB, train []example) *Classifier {
	t.Helper()
	c := newDefault(t, nil)
	for _, e := range train {
		if err := c.Learn(e.input(), e.Categories); err != nil {
			t.Fatalf("learn %s: %v", e.ID, err)
		}
	}
	return c
}
