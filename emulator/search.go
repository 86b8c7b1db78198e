package emulator

import (
	"net/http"
	"regexp"
	"strings"
	"unicode"
)

// $search on applications (docs/graph.md): `$search="displayName:Veeam"`, clauses joined by
// AND or OR, each a quoted "property:words". Graph's search is tokenized: a name is split at
// spaces, punctuation and changes of case, and each word searched for must begin one of the
// name's tokens, whatever the case ("Using the $search query parameter", advanced queries on
// directory objects). Only displayName is searched (description, the other property Graph
// allows on applications, is never set in the emulator). It needs ConsistencyLevel: eventual.

// searchQuery is a parsed $search: any of the alternatives, each all of its clauses.
type searchQuery struct {
	anyOf [][]searchClause
}

type searchClause struct {
	prop  string
	words []string
}

var searchClauseRE = regexp.MustCompile(`^"([A-Za-z]+):([^"]*)"$`)

// parseSearch parses a $search value for et.
func parseSearch(v string, et entityType) (*searchQuery, *graphError) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, badRequest("Invalid $search query: the value is empty.") // *inferred* wording
	}
	q := &searchQuery{}
	for _, alt := range splitOutsideQuotes(v, " OR ") {
		var all []searchClause
		for _, part := range splitOutsideQuotes(alt, " AND ") {
			m := searchClauseRE.FindStringSubmatch(strings.TrimSpace(part))
			if m == nil {
				// *inferred* wording: Graph answers a syntax error for an unquoted clause.
				return nil, badRequest("Syntax error: the $search clause '%s' must be a quoted \"property:value\".", strings.TrimSpace(part))
			}
			prop, ok := et.canonical(m[1])
			if !ok || (prop != "displayName" && prop != "description") {
				return nil, &graphError{status: http.StatusBadRequest, code: "Request_UnsupportedQuery",
					message: "Unsupported or invalid query filter clause specified for property '" + m[1] + "' of resource '" + et.title + "'."}
			}
			all = append(all, searchClause{prop: prop, words: searchTokens(m[2])})
		}
		q.anyOf = append(q.anyOf, all)
	}
	return q, nil
}

// splitOutsideQuotes splits s at sep where sep is not inside double quotes.
func splitOutsideQuotes(s, sep string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			inQuote = !inQuote
		case !inQuote && strings.HasPrefix(s[i:], sep):
			out = append(out, s[start:i])
			start = i + len(sep)
			i += len(sep) - 1
		}
	}
	return append(out, s[start:])
}

// searchTokens splits text as Graph's tokenized search does: at anything that is not a letter
// or digit, between a lower-case and an upper-case letter, and between letters and digits.
func searchTokens(text string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = nil
		}
	}
	var prev rune
	for _, r := range text {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case len(cur) > 0 && unicode.IsUpper(r) && unicode.IsLower(prev),
			len(cur) > 0 && unicode.IsDigit(r) != unicode.IsDigit(prev):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
		prev = r
	}
	flush()
	return out
}

// matches reports whether a's display name satisfies the search.
func (q *searchQuery) matches(a *app) bool {
	if q == nil {
		return true
	}
	for _, all := range q.anyOf {
		ok := true
		for _, c := range all {
			if c.prop != "displayName" || !tokensMatch(searchTokens(a.DisplayName), c.words) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// tokensMatch reports whether every word begins one of tokens.
func tokensMatch(tokens, words []string) bool {
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		found := false
		for _, t := range tokens {
			if strings.HasPrefix(t, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
