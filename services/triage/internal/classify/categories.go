package classify

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Category is the stable id of a support category, as stored with a
// conversation and shown in events: lowercase, with subcategories written
// "parent/child" ("deployments/scaling"). Use [Parse] to turn what people
// type ("Feature flags") into one.
type Category string

// The handbook's categories. A conversation has one or more, the
// predominant first.
const (
	Performance Category = "performance"
	// Deployments is a self-hosted deployment question whose subcategory is
	// not known; prefer one of the Deployments* subcategories.
	Deployments                 Category = "deployments"
	DeploymentsScaling          Category = "deployments/scaling"
	DeploymentsSetup            Category = "deployments/setup"
	DeploymentsMaintenance      Category = "deployments/maintenance"
	DeploymentsHobbyist         Category = "deployments/hobbyist"
	DeploymentsMigrations       Category = "deployments/migrations"
	DeploymentsManagedInstances Category = "deployments/managed-instances"
	Instrumentation             Category = "instrumentation"
	UXConfusion                 Category = "ux-confusion"
	DataIntegrity               Category = "data-integrity"
	API                         Category = "api"
	Plugins                     Category = "plugins"
	Recordings                  Category = "recordings"
	Toolbar                     Category = "toolbar"
	FeatureFlags                Category = "feature-flags"
	NotABug                     Category = "not-a-bug"
	Billing                     Category = "billing"
	FeatureRequest              Category = "feature-request"
	Other                       Category = "other"
)

// The routing classes: not support categories but decisions about where a
// conversation goes.
const (
	// Spam is closed automatically with reason spam.
	Spam Category = "spam"
	// Business covers marketing and partnership proposals, routed to the
	// configured business contacts instead of engineers.
	Business Category = "business"
)

// Info describes a category.
type Info struct {
	// ID is the stable id.
	ID Category
	// Name is the display name, as the handbook writes it.
	Name string
	// Parent is the parent category of a subcategory, empty otherwise.
	Parent Category
	// Routing is true for the routing classes Spam and Business.
	Routing bool
}

// catalogue lists every category in display order.
var catalogue = []Info{
	{ID: Performance, Name: "Performance"},
	{ID: Deployments, Name: "Deployments"},
	{ID: DeploymentsScaling, Name: "Deployments: Scaling", Parent: Deployments},
	{ID: DeploymentsSetup, Name: "Deployments: Setup", Parent: Deployments},
	{ID: DeploymentsMaintenance, Name: "Deployments: Maintenance", Parent: Deployments},
	{ID: DeploymentsHobbyist, Name: "Deployments: Hobbyist", Parent: Deployments},
	{ID: DeploymentsMigrations, Name: "Deployments: Migrations", Parent: Deployments},
	{ID: DeploymentsManagedInstances, Name: "Deployments: Supporting Managed Instances", Parent: Deployments},
	{ID: Instrumentation, Name: "Instrumentation"},
	{ID: UXConfusion, Name: "User Experience Confusion"},
	{ID: DataIntegrity, Name: "Data Integrity"},
	{ID: API, Name: "API"},
	{ID: Plugins, Name: "Plugins"},
	{ID: Recordings, Name: "Recordings"},
	{ID: Toolbar, Name: "Toolbar"},
	{ID: FeatureFlags, Name: "Feature-flags"},
	{ID: NotABug, Name: "Not-a-bug"},
	{ID: Billing, Name: "Billing"},
	{ID: FeatureRequest, Name: "Feature request"},
	{ID: Other, Name: "Other"},
	{ID: Spam, Name: "Spam", Routing: true},
	{ID: Business, Name: "Business", Routing: true},
}

// aliases maps squashed spellings (see squash) that are neither an id nor a
// display name to their category.
var aliases = map[string]Category{
	"perf":                                  Performance,
	"slow":                                  Performance,
	"deployment":                            Deployments,
	"selfhosted":                            Deployments,
	"selfhosting":                           Deployments,
	"scaling":                               DeploymentsScaling,
	"setup":                                 DeploymentsSetup,
	"maintenance":                           DeploymentsMaintenance,
	"hobby":                                 DeploymentsHobbyist,
	"hobbyist":                              DeploymentsHobbyist,
	"hobbydeploy":                           DeploymentsHobbyist,
	"migration":                             DeploymentsMigrations,
	"migrations":                            DeploymentsMigrations,
	"managedinstance":                       DeploymentsManagedInstances,
	"managedinstances":                      DeploymentsManagedInstances,
	"supportingmanagedinstances":            DeploymentsManagedInstances,
	"deploymentssupportingmanagedinstances": DeploymentsManagedInstances,
	"ux":                                    UXConfusion,
	"uxconfusion":                           UXConfusion,
	"userexperience":                        UXConfusion,
	"confusion":                             UXConfusion,
	"data":                                  DataIntegrity,
	"dataintegrity":                         DataIntegrity,
	"plugin":                                Plugins,
	"apps":                                  Plugins,
	"recording":                             Recordings,
	"sessionrecording":                      Recordings,
	"sessionrecordings":                     Recordings,
	"replay":                                Recordings,
	"sessionreplay":                         Recordings,
	"flags":                                 FeatureFlags,
	"featureflag":                           FeatureFlags,
	"notbug":                                NotABug,
	"notabug":                               NotABug,
	"featurerequests":                       FeatureRequest,
	"enhancement":                           FeatureRequest,
	"junk":                                  Spam,
	"marketing":                             Business,
	"partnership":                           Business,
	"partnerships":                          Business,
}

// index maps squashed ids, display names and aliases to categories.
func index() map[string]Category {
	m := make(map[string]Category, 2*len(catalogue)+len(aliases))
	for _, c := range catalogue {
		m[squash(string(c.ID))] = c.ID
		m[squash(c.Name)] = c.ID
	}
	for k, v := range aliases {
		m[k] = v
	}
	return m
}

// squash lowercases s and keeps only letters and digits, so that
// "Feature flags", "feature-flags" and "FEATURE_FLAGS" compare equal.
func squash(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ErrUnknownCategory is returned (wrapped) by [Parse] for input that names no
// category.
var ErrUnknownCategory = errors.New("unknown category")

// Parser normalizes user input into categories. Build it once with
// [NewParser]; it is safe for concurrent use.
type Parser struct {
	index map[string]Category
}

// NewParser returns a parser that knows every id, display name and common
// alias.
func NewParser() *Parser {
	return &Parser{index: index()}
}

// Parse returns the category that s names: an id ("feature-flags",
// "deployments/setup"), a display name ("Feature-flags", "User Experience
// Confusion", "Deployments: Scaling") or a common alias ("feature flag",
// "UX", "self-hosted", "hobby"), case and punctuation ignored. A plural
// "s" is forgiven.
func (p *Parser) Parse(s string) (Category, error) {
	k := squash(s)
	if c, ok := p.index[k]; ok {
		return c, nil
	}
	if c, ok := p.index[strings.TrimSuffix(k, "s")]; ok && k != "" {
		return c, nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownCategory, s)
}

// ParseList parses each item and returns the categories without duplicates,
// in the given order (the predominant first). Every unknown item is
// reported.
func (p *Parser) ParseList(items []string) ([]Category, error) {
	out := make([]Category, 0, len(items))
	var errs []error
	for _, s := range items {
		c, err := p.Parse(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, errors.Join(errs...)
}

// Parse is [Parser.Parse] with a parser built for the call; hold a
// [Parser] when parsing often.
func Parse(s string) (Category, error) {
	return NewParser().Parse(s)
}

// All returns every category and routing class in display order.
func All() []Info {
	return append([]Info(nil), catalogue...)
}

// Lookup returns the description of a category id.
func Lookup(c Category) (Info, bool) {
	for _, in := range catalogue {
		if in.ID == c {
			return in, true
		}
	}
	return Info{}, false
}

// Name returns the display name of c, or c itself when it is unknown.
func (c Category) Name() string {
	if in, ok := Lookup(c); ok {
		return in.Name
	}
	return string(c)
}

// Parent returns the parent of a subcategory ("deployments" for
// "deployments/scaling"), or "" for a top-level category.
func (c Category) Parent() Category {
	if i := strings.IndexByte(string(c), '/'); i >= 0 {
		return c[:i]
	}
	return ""
}

// Routing reports whether c is a routing class (spam or business) rather
// than a support category.
func (c Category) Routing() bool {
	return c == Spam || c == Business
}

// Valid reports whether c is a known id.
func (c Category) Valid() bool {
	_, ok := Lookup(c)
	return ok
}
