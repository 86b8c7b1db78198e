// Package stress proves certagent's invariants under fire, as `make stress` runs it: a crash
// campaign that kills real agent processes at random instants, the Graph fault matrix, and
// hostile input to the drop folder, the API and the store. Every test adds rows to one table,
// printed at the end: each row an invariant or a scenario, how many runs, what they hit, the
// violations, and PASS or FAIL against the row's target. Tests only: shipped code never
// imports it.
//
// The agents are real processes built from ./cmd/certagent, run against an emulated tenant
// in the test process (internal/e2e's harness), so that a test can kill -9 one at any
// instant, inject Graph faults, and read the tenant's truth from the emulator's primary.
package stress

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Row is one line of the stress table: an invariant or a scenario.
type Row struct {
	// Group orders the table: "crash", "invariant", "graph", "drop folder", "api", "store".
	Group string
	// Name says what was done or checked.
	Name string
	// Runs counts the runs (or checks) behind the row.
	Runs int
	// Hit says what the runs reached: the instants hit, the outcome seen.
	Hit string
	// Violations counts the runs that broke the row's invariant or missed its expected
	// outcome.
	Violations int
	// Target is what the row must show to pass.
	Target string
	// Fail marks a row that missed its target for a reason other than a counted violation
	// (too few runs).
	Fail bool
}

// Pass reports whether the row met its target.
func (r Row) Pass() bool { return r.Violations == 0 && !r.Fail && r.Runs > 0 }

// Table collects rows from concurrent tests.
type Table struct {
	mu   sync.Mutex
	rows []Row
}

// Add appends a row.
func (t *Table) Add(r Row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, r)
}

// Rows returns the rows, grouped in the table's order (stable within a group).
func (t *Table) Rows() []Row {
	t.mu.Lock()
	defer t.mu.Unlock()
	rows := slices.Clone(t.rows)
	order := []string{"crash", "invariant", "graph", "drop folder", "api", "store"}
	rank := func(g string) int {
		if i := slices.Index(order, g); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(rows, func(a, b Row) int { return rank(a.Group) - rank(b.Group) })
	return rows
}

// Failed reports whether any row missed its target.
func (t *Table) Failed() bool {
	for _, r := range t.Rows() {
		if !r.Pass() {
			return true
		}
	}
	return false
}

// Print writes the table as Markdown, columns padded so that it also reads as plain text.
func (t *Table) Print(w io.Writer) {
	rows := t.Rows()
	head := []string{"group", "invariant or scenario", "runs", "hit", "violations", "target", "result"}
	cells := [][]string{head}
	pass := 0
	for _, r := range rows {
		res := "PASS"
		if !r.Pass() {
			res = "FAIL"
		} else {
			pass++
		}
		cells = append(cells, []string{r.Group, r.Name, fmt.Sprint(r.Runs), r.Hit, fmt.Sprint(r.Violations), r.Target, res})
	}
	width := make([]int, len(head))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(row []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range row {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(cells[0])
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, row := range cells[1:] {
		line(row)
	}
	fmt.Fprintf(w, "\n%d of %d rows PASS\n", pass, len(rows))
}

// Counts is a tally of named events, printed "name n, name n" in the order first seen.
type Counts struct {
	mu    sync.Mutex
	order []string
	n     map[string]int
}

// Add counts one more of name.
func (c *Counts) Add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if _, ok := c.n[name]; !ok {
		c.order = append(c.order, name)
	}
	c.n[name]++
}

// Get returns the count of name.
func (c *Counts) Get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// String lists the counts.
func (c *Counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := make([]string, len(c.order))
	for i, k := range c.order {
		parts[i] = fmt.Sprintf("%s %d", k, c.n[k])
	}
	return strings.Join(parts, ", ")
}
