package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Statuses of a check line (doctor, store check). The values are part of the contract.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
)

// check is one line of doctor or store check: what was checked, how it went, and what to do.
// --json prints one such object per line.
type check struct {
	Check   string `json:"check"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// checks collects lines in order.
type checks struct{ list []check }

func (c *checks) ok(name, format string, args ...any) {
	c.list = append(c.list, check{Check: name, Status: statusOK, Message: fmt.Sprintf(format, args...)})
}

func (c *checks) warn(name, msg, fix string) {
	c.list = append(c.list, check{Check: name, Status: statusWarn, Message: msg, Fix: fix})
}

func (c *checks) fail(name, msg, fix string) {
	c.list = append(c.list, check{Check: name, Status: statusFail, Message: msg, Fix: fix})
}

func (c *checks) failed() int {
	n := 0
	for _, l := range c.list {
		if l.Status == statusFail {
			n++
		}
	}
	return n
}

// print writes the lines, as text or as one JSON object per line, and returns the command's
// result: nil when nothing failed (warnings pass), exit 1 otherwise.
func (c *checks) print(w io.Writer, asJSON bool, what string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, l := range c.list {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
	} else {
		width := 0
		for _, l := range c.list {
			width = max(width, len(l.Check))
		}
		for _, l := range c.list {
			tag := map[string]string{statusOK: "ok  ", statusWarn: "WARN", statusFail: "FAIL"}[l.Status]
			fmt.Fprintf(w, "%s  %-*s  %s\n", tag, width, l.Check, l.Message)
			if l.Fix != "" {
				fmt.Fprintf(w, "      %-*s  fix: %s\n", width, "", l.Fix)
			}
		}
	}
	if n := c.failed(); n > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %d of %d checks failed", what, n, len(c.list))}
	}
	return nil
}

// plural returns "1 thing" or "n things".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(word, "y"))
	}
	return fmt.Sprintf("%d %ss", n, word)
}
