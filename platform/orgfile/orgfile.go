// Package orgfile reads the organisation file (SIDEKICK_ORG_CONFIG) once
// per process: the one YAML that describes people, teams, rotations,
// escalation policies, business contacts, response policies and Sentry
// ownership. It checks the top-level keys (an unknown one is an error
// naming its line) and hands each service the sections it owns as YAML
// nodes, which keep their line numbers for the service's own errors. What
// a section means is parsed by the service that owns it:
//
//	people, teams, rotations, support, overrides   rotation (schedule.ParseConfig)
//	policies, triage                                triage (services/triage/orgconf)
//	escalation, business_contacts                   notifier (policy.FromFile, services/notifier/orgconf)
//	sentry                                          ingest-sentry (ownership.FromSection)
//	intake, customers                               reserved: accepted, read by nobody yet
//
// A File is immutable. Its Version is the content hash rotation stores with
// every applied configuration, so a service can tell which version it runs;
// package orgwatch picks up a newer one applied through rotation without a
// restart, and DiffSections describes what changes between two versions.
package orgfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Sections are the top-level keys an organisation file may have, in the
// order the documentation lists them.
var Sections = []string{
	"people", "teams", "rotations", "support", "overrides", "holidays",
	"policies", "triage",
	"escalation", "business_contacts",
	"sentry",
	"intake", "customers",
}

// File is a parsed organisation file.
type File struct {
	// Path is where the file was read from; empty when parsed from bytes.
	Path string
	// Data is the file as written: rotation stores and versions it.
	Data []byte
	// Version is Digest(Data).
	Version  string
	sections map[string]*yaml.Node
}

// Digest is the content hash that identifies a version of the file: the
// hex SHA-256 of its bytes.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Read reads and parses the file at path. Errors name the path.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read organisation file: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// Parse parses an organisation file. An empty file is valid and has no
// sections; a top-level key outside Sections is an error naming its line.
func Parse(data []byte) (*File, error) {
	f := &File{Data: data, Version: Digest(data), sections: map[string]*yaml.Node{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("organisation file: parse YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return f, nil
	}
	doc := root.Content[0]
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return f, nil // only comments
	}
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("organisation file: line %d: not a mapping of sections (%s)", doc.Line, strings.Join(Sections, ", "))
	}
	var errs []error
	seen := map[string]int{}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, val := doc.Content[i], doc.Content[i+1]
		if !slices.Contains(Sections, key.Value) {
			errs = append(errs, fmt.Errorf("organisation file: line %d: unknown section %q (want one of %s)", key.Line, key.Value, strings.Join(Sections, ", ")))
			continue
		}
		// A node tree does not refuse a repeated key the way decoding into
		// a map does, and the second would silently win.
		if first, ok := seen[key.Value]; ok {
			errs = append(errs, fmt.Errorf("organisation file: line %d: section %q again (first on line %d)", key.Line, key.Value, first))
			continue
		}
		seen[key.Value] = key.Line
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			continue // "triage:" alone says nothing
		}
		f.sections[key.Value] = val
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

// Section returns the value of a top-level key, nil when the file does not
// have it (or has it empty) and on a nil File, so a service without an
// organisation file reads every section as absent. The node must not be
// modified: every service of the process shares it.
func (f *File) Section(name string) *yaml.Node {
	if f == nil {
		return nil
	}
	return f.sections[name]
}
