package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// customerColumns are the columns of a customer CSV file, in the documented
// order. Only id is required; lists are ';'-separated.
var customerColumns = []string{
	"id", "name", "organisation", "plan", "monthly_revenue", "in_sales_process",
	"email_domains", "slack_user_ids", "github_logins", "sentry_users",
}

// rowError is one bad row of an import file.
type rowError struct {
	Line int
	Msg  string
}

// rowErrors lists every bad row of an import file, in file order.
type rowErrors []rowError

func (e rowErrors) Error() string {
	lines := make([]string, len(e))
	for i, re := range e {
		lines[i] = fmt.Sprintf("line %d: %s", re.Line, re.Msg)
	}
	return strings.Join(lines, "\n")
}

// customerFormat decides how to read a customer file: --format when given,
// else the file extension, else the first character ('[' is JSON).
func customerFormat(name, format string, data []byte) (string, error) {
	switch f := strings.ToLower(format); f {
	case "csv", "json":
		return f, nil
	case "":
	default:
		return "", fmt.Errorf("unknown format %q (csv, json)", format)
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return "csv", nil
	case ".json":
		return "json", nil
	}
	if bytes.HasPrefix(bytes.TrimLeft(stripBOM(data), " \t\r\n"), []byte("[")) {
		return "json", nil
	}
	return "csv", nil
}

// parseCustomers reads a customer import file in format "csv" or "json".
// A file with bad rows returns rowErrors naming every one of them.
func parseCustomers(format string, data []byte) ([]*triagev1.Customer, error) {
	var (
		cs  []*triagev1.Customer
		err error
	)
	if format == "json" {
		cs, err = parseCustomersJSON(data)
	} else {
		cs, err = parseCustomersCSV(data)
	}
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, errors.New("the file lists no customers")
	}
	return cs, nil
}

func stripBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

// parseCustomersCSV reads a header line naming the columns (any order,
// id required) and one customer per row.
func parseCustomersCSV(data []byte) ([]*triagev1.Customer, error) {
	rd := csv.NewReader(bytes.NewReader(stripBOM(data)))
	rd.FieldsPerRecord = -1
	rd.TrimLeadingSpace = true
	header, err := rd.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty: want a header line (" + strings.Join(customerColumns, ",") + ")")
	}
	if err != nil {
		return nil, csvError(err)
	}
	col := map[string]int{}
	var errs rowErrors
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case !isCustomerColumn(h):
			errs = append(errs, rowError{1, fmt.Sprintf("unknown column %q (columns: %s)", header[i], strings.Join(customerColumns, ", "))})
		case col[h] != 0:
			errs = append(errs, rowError{1, fmt.Sprintf("column %q appears twice", h)})
		default:
			col[h] = i + 1 // 1-based so 0 means absent
		}
	}
	if col["id"] == 0 && len(errs) == 0 {
		errs = append(errs, rowError{1, "no id column"})
	}
	if len(errs) > 0 {
		return nil, errs
	}

	var out []*triagev1.Customer
	firstLine := map[string]int{}
	for {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, append(errs, csvRowError(err))
		}
		line, _ := rd.FieldPos(0)
		if blank(rec) {
			continue
		}
		if len(rec) != len(header) {
			errs = append(errs, rowError{line, fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))})
			continue
		}
		get := func(name string) string {
			if i := col[name]; i > 0 {
				return strings.TrimSpace(rec[i-1])
			}
			return ""
		}
		c := &triagev1.Customer{
			Id: get("id"), Name: get("name"), Organisation: get("organisation"), Plan: get("plan"),
			EmailDomains: splitList(get("email_domains")), SlackUserIds: splitList(get("slack_user_ids")),
			GithubLogins: splitList(get("github_logins")), SentryUsers: splitList(get("sentry_users")),
		}
		var problems []string
		if v := get("monthly_revenue"); v != "" {
			cents, err := parseDollars(v)
			if err != nil {
				problems = append(problems, "monthly_revenue: "+err.Error())
			}
			c.MonthlyRevenueCents = cents
		}
		if v := get("in_sales_process"); v != "" {
			b, err := strconv.ParseBool(strings.ToLower(v))
			if err != nil {
				problems = append(problems, fmt.Sprintf("in_sales_process: %q is not true or false", v))
			}
			c.InSalesProcess = b
		}
		problems = append(problems, checkCustomer(c, line, firstLine)...)
		if len(problems) > 0 {
			errs = append(errs, rowError{line, strings.Join(problems, "; ")})
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func isCustomerColumn(name string) bool {
	for _, c := range customerColumns {
		if c == name {
			return true
		}
	}
	return false
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// csvError turns a csv.ParseError into a rowErrors with its line.
func csvError(err error) error {
	return rowErrors{csvRowError(err)}
}

func csvRowError(err error) rowError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return rowError{pe.Line, pe.Err.Error()}
	}
	return rowError{0, err.Error()}
}

// checkCustomer checks what every format shares: an id, listed once.
func checkCustomer(c *triagev1.Customer, line int, firstLine map[string]int) []string {
	if c.GetId() == "" {
		return []string{"id is empty"}
	}
	if first, ok := firstLine[c.GetId()]; ok {
		return []string{fmt.Sprintf("customer %s is listed twice (first on line %d)", c.GetId(), first)}
	}
	firstLine[c.GetId()] = line
	return nil
}

// splitList splits a ';'-separated list, trimming and dropping empties.
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	return trimAll(strings.Split(s, ";"))
}

var dollarsRE = regexp.MustCompile(`^(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?$`)

// parseDollars reads a decimal dollar amount ("499", "1234.5", "$1,234.50")
// exactly, without floating point, as cents.
func parseDollars(s string) (int64, error) {
	v := strings.TrimPrefix(strings.TrimSpace(s), "$")
	if !dollarsRE.MatchString(v) {
		return 0, fmt.Errorf("%q is not an amount of dollars like 499 or 1234.50", s)
	}
	whole, frac, _ := strings.Cut(strings.ReplaceAll(v, ",", ""), ".")
	if len(whole) > 13 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	cents := w * 100
	if frac != "" {
		if len(frac) == 1 {
			frac += "0"
		}
		f, _ := strconv.ParseInt(frac, 10, 64)
		cents += f
	}
	return cents, nil
}

// jsonCustomer is one object of a customer JSON file: the CSV's fields,
// lists as arrays (or ';'-separated strings). monthly_revenue_cents, tier
// and tier_reason are accepted so `customers show --json` output imports.
type jsonCustomer struct {
	ID                  string          `json:"id"`
	Name                string          `json:"name"`
	Organisation        string          `json:"organisation"`
	Plan                string          `json:"plan"`
	MonthlyRevenue      json.RawMessage `json:"monthly_revenue"`
	MonthlyRevenueCents json.RawMessage `json:"monthly_revenue_cents"`
	InSalesProcess      bool            `json:"in_sales_process"`
	EmailDomains        jsonList        `json:"email_domains"`
	SlackUserIDs        jsonList        `json:"slack_user_ids"`
	GitHubLogins        jsonList        `json:"github_logins"`
	SentryUsers         jsonList        `json:"sentry_users"`
	Tier                json.RawMessage `json:"tier"`
	TierReason          json.RawMessage `json:"tier_reason"`
}

// jsonList is an array of strings, or one ';'-separated string.
type jsonList []string

func (l *jsonList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = splitList(s)
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return errors.New("want an array of strings or a ';'-separated string")
	}
	*l = trimAll(a)
	return nil
}

// parseCustomersJSON reads an array of customer objects.
func parseCustomersJSON(data []byte) ([]*triagev1.Customer, error) {
	data = stripBOM(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		return nil, rowErrors{{lineAt(data, valueStart(data, 0)), "want a JSON array of customer objects"}}
	}
	var (
		out       []*triagev1.Customer
		errs      rowErrors
		firstLine = map[string]int{}
	)
	for dec.More() {
		line := lineAt(data, valueStart(data, int(dec.InputOffset())))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, append(errs, rowError{jsonErrorLine(data, err, line), "bad JSON: " + err.Error()})
		}
		c, problems := customerFromJSON(raw)
		if c != nil {
			problems = append(problems, checkCustomer(c, line, firstLine)...)
		}
		if len(problems) > 0 {
			errs = append(errs, rowError{line, strings.Join(problems, "; ")})
			continue
		}
		out = append(out, c)
	}
	if _, err := dec.Token(); err != nil {
		return nil, append(errs, rowError{jsonErrorLine(data, err, lineAt(data, len(data))), "bad JSON: " + err.Error()})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// customerFromJSON converts one object; the customer is nil when the
// object could not be read at all.
func customerFromJSON(raw json.RawMessage) (*triagev1.Customer, []string) {
	var j jsonCustomer
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return nil, []string{"want a customer object, got " + te.Value}
			}
			return nil, []string{fmt.Sprintf("%s: want %s, got %s", te.Field, te.Type, te.Value)}
		}
		return nil, []string{strings.TrimPrefix(err.Error(), "json: ")}
	}
	c := &triagev1.Customer{
		Id: strings.TrimSpace(j.ID), Name: strings.TrimSpace(j.Name), Organisation: strings.TrimSpace(j.Organisation),
		Plan: strings.TrimSpace(j.Plan), InSalesProcess: j.InSalesProcess,
		EmailDomains: j.EmailDomains, SlackUserIds: j.SlackUserIDs, GithubLogins: j.GitHubLogins, SentryUsers: j.SentryUsers,
	}
	var problems []string
	switch {
	case len(j.MonthlyRevenue) > 0 && len(j.MonthlyRevenueCents) > 0:
		problems = append(problems, "give monthly_revenue or monthly_revenue_cents, not both")
	case len(j.MonthlyRevenue) > 0 && string(j.MonthlyRevenue) != "null":
		v := string(j.MonthlyRevenue)
		var quoted string
		if json.Unmarshal(j.MonthlyRevenue, &quoted) == nil {
			v = quoted
		}
		cents, err := parseDollars(v)
		if err != nil {
			problems = append(problems, "monthly_revenue: "+err.Error())
		}
		c.MonthlyRevenueCents = cents
	case len(j.MonthlyRevenueCents) > 0 && string(j.MonthlyRevenueCents) != "null":
		// protobuf JSON writes int64 as a string.
		v := strings.Trim(string(j.MonthlyRevenueCents), `"`)
		cents, err := strconv.ParseInt(v, 10, 64)
		if err != nil || cents < 0 {
			problems = append(problems, fmt.Sprintf("monthly_revenue_cents: %s is not a whole number of cents", j.MonthlyRevenueCents))
		}
		c.MonthlyRevenueCents = cents
	}
	return c, problems
}

// valueStart skips the whitespace and the comma before the next value.
func valueStart(data []byte, off int) int {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		default:
			return off
		}
	}
	return off
}

// lineAt is the 1-based line of a byte offset.
func lineAt(data []byte, off int) int {
	off = min(off, len(data))
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

// jsonErrorLine is the line of a JSON syntax error, or fallback.
func jsonErrorLine(data []byte, err error, fallback int) int {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return lineAt(data, int(se.Offset))
	}
	return fallback
}
