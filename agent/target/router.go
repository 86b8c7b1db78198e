package target

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/intake"
	"github.com/aucloud/certagent/agent/rotation"
)

// Router sends a certificate that does not say which target it is for (a file at the top of
// the drop folder, an API submission without a target) to the target whose policy names it
// (its allowed_subjects, allowed_issuers or allowed_thumbprints). A target without any
// allow-list takes what no other target names, when it is the only such target. A
// certificate that no target takes is refused as no_target; one that several take is refused
// as ambiguous_target, unless the config sends it to all of them (ToAll).
//
// With one target, every certificate goes to it.
type Router struct {
	targets []*Target
	toAll   bool
	log     *slog.Logger
	now     func() time.Time

	// routed remembers, between HandleFile and Filed (the intake calls them in turn from
	// one goroutine), the rotations a file started in each target.
	routed map[string][]routedTo
}

type routedTo struct {
	t          *Target
	rotationID string
}

// NewRouter returns a router over targets (at least one). toAll sends a certificate several
// targets name to all of them.
func NewRouter(targets []*Target, toAll bool, log *slog.Logger, now func() time.Time) *Router {
	if now == nil {
		now = time.Now
	}
	return &Router{targets: targets, toAll: toAll, log: log, now: now, routed: map[string][]routedTo{}}
}

// Route returns the targets data goes to, or the verdict that refuses it (a certificate the
// policy cannot read, or one no target or several targets take).
func (r *Router) Route(data []byte) ([]*Target, *certpolicy.Verdict) {
	if len(r.targets) == 1 {
		return r.targets, nil
	}
	v := certpolicy.Default().Check(data, r.now())
	if v.Certificate == nil {
		// Not one readable certificate (garbage, a private key, several): every target would
		// refuse it the same way.
		return nil, &v
	}
	x, err := x509.ParseCertificate(v.DER)
	if err != nil {
		return nil, &v
	}
	var named, open []*Target
	for _, t := range r.targets {
		p := t.cfg.Policy
		switch {
		case p.Names(x):
			named = append(named, t)
		case len(p.AllowedSubjects)+len(p.AllowedIssuers)+len(p.AllowedThumbprints) == 0:
			open = append(open, t)
		}
	}
	if len(named) == 0 && len(open) == 1 {
		named = open
	}
	refuse := func(code certs.Code, format string, args ...any) ([]*Target, *certpolicy.Verdict) {
		return nil, &certpolicy.Verdict{Reason: &certs.Reason{Code: code, Message: fmt.Sprintf(format, args...)}, Certificate: v.Certificate, DER: v.DER}
	}
	switch {
	case len(named) == 0:
		return refuse(certs.NoTarget, "no target takes certificate %s (%s): no target's policy names it; drop it into the folder of its target (%s)",
			v.Certificate.Thumbprint, v.Certificate.Subject, r.folders())
	case len(named) > 1 && !r.toAll:
		var names []string
		for _, t := range named {
			names = append(names, t.Name())
		}
		return refuse(certs.AmbiguousTarget, "certificate %s (%s) is named by the policies of several targets (%s); drop it into the folder of the one it is for, or set intake.route_to_all to send it to all of them",
			v.Certificate.Thumbprint, v.Certificate.Subject, strings.Join(names, ", "))
	}
	return named, nil
}

func (r *Router) folders() string {
	var out []string
	for _, t := range r.targets {
		out = append(out, t.DropFolder())
	}
	return strings.Join(out, ", ")
}

// Target returns the target named name, or nil.
func (r *Router) Target(name string) *Target {
	for _, t := range r.targets {
		if strings.EqualFold(t.Name(), name) {
			return t
		}
	}
	return nil
}

// Targets returns the targets, in config order.
func (r *Router) Targets() []*Target { return r.targets }

// HandleFile implements intake.Handler for the top of the drop folder: the file goes to the
// targets Route picks, through each one's own submission path.
func (r *Router) HandleFile(ctx context.Context, f intake.File) intake.Decision {
	delete(r.routed, f.Name)
	ts, refused := r.Route(f.Data)
	if refused != nil {
		return intake.Decision{Reason: refused.Reason, Cert: refused.Certificate}
	}
	var d intake.Decision
	for _, t := range ts {
		td := t.HandleFile(ctx, f)
		if td.Retry {
			return td // a target could not record it: all of them see the file again later
		}
		if td.Accepted {
			r.routed[f.Name] = append(r.routed[f.Name], routedTo{t, td.RotationID})
			if !d.Accepted {
				d = td
			}
		} else if d.Reason == nil && !d.Accepted {
			d = td
		}
	}
	return d
}

// Filed implements intake.Handler: the file's fate is audited once, and each target that took
// it records where it was filed.
func (r *Router) Filed(ctx context.Context, f intake.File, d intake.Decision, archivedAs string) {
	routed := r.routed[f.Name]
	delete(r.routed, f.Name)
	if len(routed) == 0 {
		r.targets[0].filed(ctx, f, d, archivedAs, "") // refused: for no app
		return
	}
	for i, rt := range routed {
		if i == 0 {
			rt.t.Filed(ctx, f, intake.Decision{Accepted: true, RotationID: rt.rotationID, Cert: d.Cert}, archivedAs)
			continue
		}
		if err := rt.t.engine.Archived(ctx, rt.rotationID, archivedAs); err != nil {
			r.log.Warn("recording archived name", "rotation_id", rt.rotationID, "err", err)
		}
	}
}

// SubmitAPI submits a certificate posted to the API, with its signature (nil: none), to the
// target named target, or, when target is "", to the targets Route picks; each target judges
// the signature by its own provenance settings. It returns one result per target it went to.
func (r *Router) SubmitAPI(ctx context.Context, data, signature []byte, target, fileName, actor string) ([]Submitted, error) {
	var ts []*Target
	if target != "" {
		t := r.Target(target)
		if t == nil {
			return nil, &UnknownTargetError{Name: target, Known: r.names()}
		}
		ts = []*Target{t}
	} else {
		var refused *certpolicy.Verdict
		if ts, refused = r.Route(data); refused != nil {
			r.targets[0].countIntake("rejected", string(refused.Reason.Code))
			r.targets[0].audit(ctx, rotation.AuditEntry{Action: rotation.ActionIntakeRejected, Actor: actor, Outcome: rotation.OutcomeRefused,
				File: fileName, Cert: refused.Certificate, Code: refused.Reason.Code, Message: refused.Reason.Message})
			return []Submitted{{Verdict: *refused}}, nil
		}
	}
	var out []Submitted
	for _, t := range ts {
		s, err := t.SubmitAPI(ctx, data, signature, fileName, actor)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Router) names() []string {
	var out []string
	for _, t := range r.targets {
		out = append(out, t.Name())
	}
	return out
}

// UnknownTargetError is a target name that no target has.
type UnknownTargetError struct {
	Name  string
	Known []string
}

func (e *UnknownTargetError) Error() string {
	return fmt.Sprintf("no target is named %q; the targets are %s", e.Name, strings.Join(e.Known, ", "))
}
