package triage

import (
	"errors"
	"fmt"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
	"github.com/sidekickhq/sidekick/services/triage/orgconf"
)

// Org is what triage reads from the organisation file; see orgconf.Org.
type Org = orgconf.Org

// ParseOrg reads triage's settings from the bytes of an organisation file.
func ParseOrg(data []byte) (Org, error) { return orgconf.Parse(data) }

// OrgFrom reads triage's settings from its sections of the organisation
// file (`policies` and `triage`); a nil file gives the defaults.
func OrgFrom(f *orgfile.File) (Org, error) { return orgconf.From(f) }

// policy combines the environment's thresholds (every tier) with the
// organisation file's per-tier ones and checks the result.
func (c Config) policy() (worktime.Policy, error) {
	cov, err := worktime.ParseCoverage(c.Coverage)
	if err != nil {
		return worktime.Policy{}, fmt.Errorf("triage: SIDEKICK_TRIAGE_COVERAGE: %w", err)
	}
	d := worktime.Thresholds{Great: c.ResponseGreat, Okay: c.ResponseOkay, TooLate: c.ResponseTooLate, Coverage: cov}
	p := orgconf.Overlay(worktime.Policy{Priority: d, Subscriber: d, Community: d}, c.Org.Policy).WithDefaults()
	if err := p.Validate(); err != nil {
		return p, errors.Join(errors.New("triage: response policy (SIDEKICK_TRIAGE_RESPONSE_GREAT, SIDEKICK_TRIAGE_RESPONSE_OKAY, SIDEKICK_TRIAGE_RESPONSE_TOO_LATE, SIDEKICK_TRIAGE_COVERAGE, organisation file)"), err)
	}
	return p, nil
}

// loadOrg reads triage's sections of an organisation file applied through
// rotation and swaps them in: the response policy (over the environment's
// thresholds, as at start), the business team and the category rules. A
// file that does not read changes nothing.
func (s *Service) loadOrg(f *orgfile.File) error {
	org, err := orgconf.From(f)
	if err != nil {
		return err
	}
	cfg := s.cfg
	cfg.Org = org
	p, err := cfg.policy()
	if err != nil {
		return err
	}
	business := cfg.BusinessTeam
	if org.BusinessTeam != "" {
		business = org.BusinessTeam
	}
	return s.engine.SetOrg(p, business, org.Rules)
}

// OrgVersion is the version of the organisation file whose sections
// triage follows (orgfile.File.Version), empty when it started without
// one and none was applied since.
func (s *Service) OrgVersion() string { return s.org.Version() }
