package client

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/api/apitype"
)

// FormatStatus prints s for a person, so that whether anything needs their attention shows
// at a glance: the verdict and the problems first (most urgent first, with their severity),
// then the target app, its certificates with the days left, the pending work, the last Graph
// sync, the agent's own credential, and the agent itself. now is the time the relative
// phrases ("in 3 days", "5 minutes ago") are computed from.
func FormatStatus(w io.Writer, s apitype.Status, now time.Time) error {
	p := &printer{w: w}
	problems := append([]apitype.StatusProblem(nil), s.Problems...)
	apitype.SortProblems(problems)

	switch n := len(problems); n {
	case 0:
		p.line("certagent: all is well; nothing needs your attention.")
	case 1:
		p.line("certagent: 1 problem needs your attention.")
	default:
		p.line("certagent: %d problems need your attention.", n)
	}
	if len(problems) > 0 {
		p.line("")
		for _, pr := range problems {
			p.line("  %-8s  %s [%s]", strings.ToUpper(string(pr.Severity)), pr.Message, pr.Code)
		}
	}
	p.line("")

	ids := "appId " + orDash(s.Target.AppID)
	if s.TenantID != "" {
		ids += ", tenant " + s.TenantID
	}
	if s.Target.DisplayName != "" {
		p.field("Target app", "%s (%s)", s.Target.DisplayName, ids)
	} else {
		p.field("Target app", "%s (name not read yet)", ids)
	}
	p.field("Certificates", "%s", certificatesLine(s, now))
	p.field("Pending work", "%s", pendingLine(s.Rotations))
	p.field("Rotations", "%s", rotationsLine(s.Rotations))
	p.field("Last Graph sync", "%s", syncLine(s.LastSync, now))
	if c := s.Credential; c != nil {
		p.field("Agent credential", "thumbprint %s, expires %s (%s)", c.Thumbprint, day(c.NotAfter), daysLeft(now, c.NotAfter))
	} else {
		p.field("Agent credential", "none yet: run 'certagent credential init'")
	}
	p.field("Drop folder", "%s", orDash(s.DropFolder))
	p.field("Approval", "%s", approvalLine(s.Approval))
	for _, t := range s.Targets {
		prefix := ""
		if len(s.Targets) > 1 {
			prefix = t.Name + ": "
		}
		if pv := t.Provenance; pv != nil {
			p.field("Signed delivery", "%s%s", prefix, provenanceLine(*pv))
		}
		if src := t.Source; src != nil {
			p.field("Next certificate", "%s%s", prefix, sourceLine(*src, now))
		}
	}
	agent := "version " + orDash(s.Version)
	if !s.StartedAt.IsZero() {
		agent += ", up " + uptime(now.Sub(s.StartedAt))
	}
	p.field("Agent", "%s", agent)
	return p.err
}

// printer writes lines and remembers the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
}

// field writes one "Label    value" line, with the values aligned.
func (p *printer) field(label, format string, args ...any) {
	p.line("%-17s %s", label, fmt.Sprintf(format, args...))
}

func certificatesLine(s apitype.Status, now time.Time) string {
	c := s.Certificates
	if s.LastSync.At == nil && s.LastSync.LastSuccess == nil && c.Count == 0 {
		return "not read yet"
	}
	if c.Count == 0 {
		return "none on the app"
	}
	line := fmt.Sprintf("%d on the app", c.Count)
	if c.NextExpiry != nil {
		line += fmt.Sprintf("; next expiry %s (%s)", day(*c.NextExpiry), daysLeft(now, *c.NextExpiry))
		var which []string
		if c.NextExpiryDisplayName != "" {
			which = append(which, fmt.Sprintf("%q", c.NextExpiryDisplayName))
		}
		if c.NextExpiryThumbprint != "" {
			which = append(which, "thumbprint "+c.NextExpiryThumbprint)
		}
		if len(which) > 0 {
			line += ": " + strings.Join(which, ", ")
		}
	}
	return line
}

func pendingLine(counts map[string]int) string {
	a := counts[string(rotation.StatePendingApproval)]
	c := counts[string(rotation.StateApplied)]
	f := counts[string(rotation.StateFailed)]
	if a+c+f == 0 {
		return "none"
	}
	return fmt.Sprintf("%d awaiting approval, %d awaiting confirmation, %d failed", a, c, f)
}

func rotationsLine(counts map[string]int) string {
	var parts []string
	for _, st := range rotation.States {
		if n := counts[string(st)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	if len(parts) == 0 {
		return "none yet"
	}
	return strings.Join(parts, ", ")
}

func syncLine(ls apitype.SyncStatus, now time.Time) string {
	if ls.At == nil {
		return "not yet: the agent has not read the app from Graph"
	}
	if ls.OK {
		return fmt.Sprintf("%s (%s): ok", stamp(*ls.At), ago(now, *ls.At))
	}
	line := fmt.Sprintf("%s (%s): FAILED", stamp(*ls.At), ago(now, *ls.At))
	if ls.Error != nil {
		line += fmt.Sprintf(": %s: %s", ls.Error.Code, ls.Error.Message)
	}
	if ls.LastSuccess != nil {
		line += fmt.Sprintf("; last success %s (%s)", stamp(*ls.LastSuccess), ago(now, *ls.LastSuccess))
	} else {
		line += "; no read has succeeded yet"
	}
	return line
}

func approvalLine(mode string) string {
	switch mode {
	case "manual":
		return "manual: each new certificate waits for a person to approve it"
	case "auto":
		return "auto: certificates that pass the policy are applied at once"
	}
	return orDash(mode)
}

// day prints t's UTC date.
func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// stamp prints t in UTC to the minute.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// daysLeft says how long until an expiry.
func daysLeft(now, t time.Time) string {
	if !t.After(now) {
		switch d := certs.DaysBetween(t, now); d {
		case 0:
			return "EXPIRED today"
		case 1:
			return "EXPIRED 1 day ago"
		default:
			return fmt.Sprintf("EXPIRED %d days ago", d)
		}
	}
	switch d := certs.DaysBetween(now, t); d {
	case 0:
		return "less than a day left"
	case 1:
		return "1 day left"
	default:
		return fmt.Sprintf("%d days left", d)
	}
}

// ago says how long ago t was.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < 2*time.Minute:
		return "1 minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d/time.Minute))
	case d < 2*time.Hour:
		return "1 hour ago"
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// uptime prints a duration coarsely: "3d 4h", "3h 12m", "12m", "45s".
func uptime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	days := int(d / (24 * time.Hour))
	h := int(d % (24 * time.Hour) / time.Hour)
	m := int(d % time.Hour / time.Minute)
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// FormatRotations prints rotations as a table, one per line: id, state, certificate subject
// (common name), thumbprint, expiry, and when it last changed.
func FormatRotations(w io.Writer, rs []apitype.Rotation, now time.Time) error {
	p := &printer{w: w}
	if len(rs) == 0 {
		p.line("no rotations")
		return p.err
	}
	p.line("%-36s  %-16s  %-40s  %-10s  %s", "ID", "STATE", "THUMBPRINT", "EXPIRES", "CERTIFICATE")
	for _, r := range rs {
		p.line("%-36s  %-16s  %-40s  %-10s  %s", r.ID, r.State, r.Certificate.Thumbprint, day(r.Certificate.NotAfter), commonName(r.Certificate.Subject))
	}
	return p.err
}

// FormatRotation prints one rotation in full, with its history and what to do next.
func FormatRotation(w io.Writer, r apitype.Rotation, now time.Time) error {
	p := &printer{w: w}
	p.field("Rotation", "%s", r.ID)
	p.field("State", "%s%s", r.State, nextStep(r.State))
	c := r.Certificate
	p.field("Certificate", "%s", c.Subject)
	p.field("Issuer", "%s", c.Issuer)
	p.field("Thumbprint", "%s", c.Thumbprint)
	p.field("Valid", "%s to %s (%s)", day(c.NotBefore), day(c.NotAfter), daysLeft(now, c.NotAfter))
	src := r.Source.Kind
	if r.Source.FileName != "" {
		src += ", " + r.Source.FileName
	}
	if r.Source.ArchivedAs != "" {
		src += ", filed as processed/" + r.Source.ArchivedAs
	}
	if r.Source.URL != "" {
		src += ", from " + r.Source.URL
	}
	p.field("Source", "%s", src)
	if r.Source.SignedBy != "" {
		p.field("Signed by", "%s", r.Source.SignedBy)
	}
	tgt := r.Target.AppID
	if r.Target.DisplayName != "" {
		tgt = r.Target.DisplayName + " (" + r.Target.AppID + ")"
	}
	p.field("Target app", "%s", tgt)
	if r.KeyID != "" {
		k := r.KeyID
		if r.AlreadyPresent {
			k += " (was already on the app; nothing written)"
		}
		p.field("keyId", "%s", k)
	}
	if r.Reason != nil {
		p.field("Reason", "%s (%s)", r.Reason.Message, r.Reason.Code)
	}
	p.line("History:")
	for _, h := range r.History {
		line := fmt.Sprintf("  %s  %-16s  %s", stamp(h.At), h.State, h.Actor)
		if h.Note != "" {
			line += ": " + h.Note
		}
		p.line("%s", line)
	}
	return p.err
}

// nextStep says what a person may do in state.
func nextStep(state string) string {
	switch rotation.State(state) {
	case rotation.StatePendingApproval:
		return " (approve or reject it)"
	case rotation.StateApplied:
		return " (tell the provider, then confirm it)"
	case rotation.StateFailed:
		return " (fix the cause, then retry it, or reject it)"
	}
	return ""
}

// commonName returns the CN of an RFC 2253 subject, or the subject itself.
func commonName(subject string) string {
	for part := range strings.SplitSeq(subject, ",") {
		if cn, ok := strings.CutPrefix(strings.TrimSpace(part), "CN="); ok {
			return cn
		}
	}
	return subject
}

func provenanceLine(pv apitype.ProvenanceStatus) string {
	var keys []string
	for _, k := range pv.Keys {
		keys = append(keys, k.Name+" ("+k.Algorithm+")")
	}
	line := "signatures checked when they come"
	if pv.Required {
		line = "required"
	}
	if len(keys) == 0 {
		return line + "; no key pinned"
	}
	return line + "; pinned keys " + strings.Join(keys, ", ")
}

func sourceLine(src apitype.SourceStatus, now time.Time) string {
	line := "fetched from " + src.URL
	switch {
	case src.LastCheck == nil:
		line += "; not fetched yet"
	case src.Error != "":
		line += fmt.Sprintf("; last try %s failed: %s", ago(now, *src.LastCheck), src.Error)
	default:
		line += "; last checked " + ago(now, *src.LastCheck)
	}
	if src.Refused != nil {
		line += fmt.Sprintf("; the published certificate was refused (%s)", src.Refused.Code)
	}
	return line
}
