package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem with a configuration: where it is and what is wrong.
type Error struct {
	// File is the config file, or "" for a Config built in code.
	File string
	// Line is the 1-based line in File, or 0 when the problem has no place in the file (a
	// default value, a Config built in code).
	Line int
	// Key is the full key path, such as "policy.min_rsa_bits" or
	// "policy.allowed_thumbprints[2]"; "" for a problem with the file as a whole (a syntax
	// error).
	Key string
	// Msg says what is wrong, in lower case without a final period.
	Msg string

	// missing marks a required key left empty (see LoadIncomplete).
	missing bool
}

// Error formats e as "file:line: key: msg", leaving out the parts e does not have.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration, in line order (problems without a line
// last). Load, Parse, Validate and CheckFiles return it as their error, never empty.
type Errors []*Error

// Error joins the problems, one a line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems as errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// err sorts es by line and returns it as an error, or nil when it is empty (never a typed
// nil).
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(lineOrder(a.Line), lineOrder(b.Line)) })
	return es
}

// lineOrder sorts line 0 (no place in the file) after every real line.
func lineOrder(line int) int {
	if line <= 0 {
		return int(^uint(0) >> 1)
	}
	return line
}
