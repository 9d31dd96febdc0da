package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// State is what triage keeps about a conversation beyond its contract
// snapshot: the response clock and the classification.
type State struct {
	// Clock is the first-response clock.
	Clock worktime.Clock
	// FirstResponseWork is the covered working time until the first staff
	// reply; nil until it is known.
	FirstResponseWork *time.Duration
	// FirstResponseLevel is the guideline level FirstResponseWork reached.
	FirstResponseLevel supportv1.DeadlineLevel
	// Suggested are the classifier's last suggested categories.
	Suggested []string
	// Confidence and Source describe the last suggestion.
	Confidence float64
	Source     string
	// Confirmed is true once a person set or confirmed the categories.
	Confirmed bool
	// Input is what the classifier reads.
	Input classify.Input
	// LearnedInput and Learned are what the model learned from this
	// conversation (nil and empty when nothing).
	LearnedInput *classify.Input
	Learned      []string
}

const stateColumns = `c.clock, c.first_response_work_seconds, c.first_response_level, c.suggested_categories,
	c.suggestion_confidence, c.suggestion_source, c.categories_confirmed, c.classify_input, c.learned_input,
	c.learned_categories`

// stateScan holds the raw columns of a State.
type stateScan struct {
	clock, input, learnedInput []byte
	frSeconds                  *float64
	frLevel                    int16
	st                         State
}

func (s *stateScan) dest() []any {
	return []any{&s.clock, &s.frSeconds, &s.frLevel, &s.st.Suggested, &s.st.Confidence, &s.st.Source,
		&s.st.Confirmed, &s.input, &s.learnedInput, &s.st.Learned}
}

func (s *stateScan) state(id string) (*State, error) {
	st := s.st
	if len(s.clock) > 0 {
		if err := json.Unmarshal(s.clock, &st.Clock); err != nil {
			return nil, fmt.Errorf("conversation %s clock: %w", id, err)
		}
	}
	if len(s.input) > 0 {
		if err := json.Unmarshal(s.input, &st.Input); err != nil {
			return nil, fmt.Errorf("conversation %s classify input: %w", id, err)
		}
	}
	if len(s.learnedInput) > 0 {
		var in classify.Input
		if err := json.Unmarshal(s.learnedInput, &in); err != nil {
			return nil, fmt.Errorf("conversation %s learned input: %w", id, err)
		}
		st.LearnedInput = &in
	}
	if s.frSeconds != nil {
		d := time.Duration(*s.frSeconds * float64(time.Second))
		st.FirstResponseWork = &d
	}
	st.FirstResponseLevel = supportv1.DeadlineLevel(s.frLevel)
	return &st, nil
}

// LoadState loads a conversation's state (lock the conversation first when
// the state will be saved).
func LoadState(ctx context.Context, q Querier, id string) (*State, error) {
	var s stateScan
	err := q.QueryRow(ctx, `SELECT `+stateColumns+` FROM conversations c WHERE c.id = $1`, id).Scan(s.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("load state of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load state of %s: %w", id, err)
	}
	return s.state(id)
}

// stateValues are a State's column values.
type stateValues struct {
	clock, input, learnedInput []byte
	frSeconds                  *float64
	frLevel                    int16
	suggested, learned         []string
	confidence                 float64
	source                     string
	confirmed                  bool
}

func stateValuesOf(id string, st *State) (stateValues, error) {
	clock, err := json.Marshal(&st.Clock)
	if err != nil {
		return stateValues{}, fmt.Errorf("save state of %s: clock: %w", id, err)
	}
	input, err := json.Marshal(&st.Input)
	if err != nil {
		return stateValues{}, fmt.Errorf("save state of %s: input: %w", id, err)
	}
	var learned []byte
	if st.LearnedInput != nil {
		if learned, err = json.Marshal(st.LearnedInput); err != nil {
			return stateValues{}, fmt.Errorf("save state of %s: learned input: %w", id, err)
		}
	}
	var fr *float64
	if st.FirstResponseWork != nil {
		v := st.FirstResponseWork.Seconds()
		fr = &v
	}
	return stateValues{clock: clock, input: input, learnedInput: learned, frSeconds: fr, frLevel: int16(st.FirstResponseLevel),
		suggested: nonNil(st.Suggested), learned: nonNil(st.Learned), confidence: st.Confidence, source: st.Source,
		confirmed: st.Confirmed}, nil
}

// Locked is a conversation with its state, locked for update.
type Locked struct {
	Conversation *supportv1.Conversation
	State        *State
}

// LockConversations loads and locks the conversations with these ids,
// skipping those another transaction holds.
func LockConversations(ctx context.Context, q Querier, ids []string) ([]Locked, error) {
	rows, err := q.Query(ctx, `SELECT `+conversationColumns+`, `+stateColumns+conversationFrom+
		` WHERE c.id = ANY($1) ORDER BY c.id FOR UPDATE OF c SKIP LOCKED`, ids)
	if err != nil {
		return nil, fmt.Errorf("lock %d conversations: %w", len(ids), err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Locked, error) {
		var s stateScan
		c, err := scanConversationWith(r, s.dest()...)
		if err != nil {
			return Locked{}, err
		}
		st, err := s.state(c.GetId())
		return Locked{Conversation: c, State: st}, err
	})
	if err != nil {
		return nil, fmt.Errorf("lock %d conversations: %w", len(ids), err)
	}
	return out, nil
}
