package engine

import (
	"fmt"

	"github.com/sidekickhq/sidekick/services/triage/internal/classify"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// orgSettings are what the organisation file sets that an applied
// version may change while triage runs.
type orgSettings struct {
	policy       worktime.Policy
	businessTeam string
}

// SetOrg swaps the response policy, the business team and the category
// rules (an organisation file applied through rotation): deadlines
// evaluated after it use p, including those of open conversations;
// proposals opened after it go to business; conversations opened after
// it are classified with rules (nil: the built-in ones). Nothing changes
// when any of them is invalid.
func (e *Engine) SetOrg(p worktime.Policy, business string, rules *classify.Rules) error {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if business == "" {
		business = "business"
	}
	r := classify.DefaultRules()
	if rules != nil {
		r = *rules
	}
	ruleSet, err := r.WithDefaults().Compile()
	if err != nil {
		return fmt.Errorf("engine: category rules: %w", err)
	}
	e.model.setRules(ruleSet)
	e.org.Store(&orgSettings{policy: p, businessTeam: business})
	return nil
}

// policy is the response policy in force.
func (e *Engine) policy() worktime.Policy { return e.org.Load().policy }

// businessTeam is the team proposals go to.
func (e *Engine) businessTeam() string { return e.org.Load().businessTeam }

// setRules makes the next classification use rules, with the stored
// model read again.
func (m *modelCache) setRules(rules *classify.RuleSet) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules, m.current, m.version = rules, nil, 0
}

// ruleSet is the category rules in force.
func (m *modelCache) ruleSet() *classify.RuleSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rules
}
