package orgfile

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// itemKeys are the fields that name an item of a list, tried in order:
// escalation policies and people by id, response policies by tier,
// business contacts by name.
var itemKeys = []string{"id", "tier", "name", "email"}

// DiffSections describes what changes from prev to next in the named
// sections, one line per change in the style of rotation's diff: "+" for
// what is added, "-" for what is removed, "~" for a value changed, with
// its path and, for a plain value, what it was and becomes:
//
//   - escalation.policies[vip]
//     ~ escalation.policies[priority].steps[1].after: 10m → 5m
//     ~ triage.response_policy.community.too_late: 16h → 12h
//   - business_contacts[Dana]
//
// Items of a list are named by their id, tier or name when every item
// has a distinct one, by their position otherwise. What the sections mean
// is left to their services; only the values are compared, so comments,
// order of keys and layout change nothing. A nil File has no sections.
func DiffSections(prev, next *File, sections ...string) []string {
	var out []string
	for _, name := range sections {
		a, err := decoded(prev, name)
		if err != nil {
			a = nil // an unreadable old version: everything new is a change
		}
		b, err := decoded(next, name)
		if err != nil {
			b = nil
		}
		diffValue(&out, name, a, b)
	}
	return out
}

func decoded(f *File, section string) (any, error) {
	n := f.Section(section)
	if n == nil {
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func diffValue(out *[]string, path string, a, b any) {
	switch {
	case reflect.DeepEqual(a, b):
		return
	case a == nil:
		*out = append(*out, "+ "+path+scalarSuffix(b))
		return
	case b == nil:
		*out = append(*out, "- "+path)
		return
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := slices.Sorted(maps.Keys(am))
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			diffValue(out, path+"."+k, am[k], bm[k])
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok {
		diffList(out, path, al, bl)
		return
	}
	*out = append(*out, fmt.Sprintf("~ %s: %s → %s", path, short(a), short(b)))
}

// diffList compares items by their name (itemKeys) when both lists name
// every item distinctly, else position by position when the lengths
// agree, else as a whole.
func diffList(out *[]string, path string, a, b []any) {
	for _, key := range itemKeys {
		an, aok := names(a, key)
		bn, bok := names(b, key)
		if !aok || !bok {
			continue
		}
		for i, n := range an {
			j := slices.Index(bn, n)
			if j < 0 {
				*out = append(*out, fmt.Sprintf("- %s[%s]", path, n))
				continue
			}
			diffValue(out, fmt.Sprintf("%s[%s]", path, n), a[i], b[j])
		}
		for _, n := range bn {
			if !slices.Contains(an, n) {
				*out = append(*out, fmt.Sprintf("+ %s[%s]", path, n))
			}
		}
		return
	}
	if len(a) == len(b) {
		for i := range a {
			diffValue(out, fmt.Sprintf("%s[%d]", path, i+1), a[i], b[i])
		}
		return
	}
	*out = append(*out, fmt.Sprintf("~ %s: %d → %d items", path, len(a), len(b)))
}

// names returns each item's key field when every item is a mapping with
// a distinct, plain one.
func names(items []any, key string) ([]string, bool) {
	out := make([]string, 0, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, false
		}
		v, ok := m[key]
		if !ok {
			return nil, false
		}
		s := fmt.Sprint(v)
		if _, isMap := v.(map[string]any); isMap || slices.Contains(out, s) {
			return nil, false
		}
		out = append(out, s)
	}
	return out, len(out) > 0
}

// scalarSuffix shows an added plain value; an added mapping or list is
// named only.
func scalarSuffix(v any) string {
	switch v.(type) {
	case map[string]any, []any:
		return ""
	}
	return ": " + short(v)
}

// short prints a value on one line, cut to a readable length.
func short(v any) string {
	s := fmt.Sprint(v)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
