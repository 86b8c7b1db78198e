package stress

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/api/apitype"
	"github.com/aucloud/certagent/emulator"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/e2e"
)

// mx is one row of the fault matrix at work: a fresh tenant, an agent, and the certificate
// it is asked to put on the target app.
type mx struct {
	t         *testing.T
	env       *e2e.Env
	a         *e2e.Agent
	target    string // app id
	targetObj string
	before    []emulator.KeyCredentialView
	cert      certtest.Cert
	thumb     string
	begin     time.Time
	// clock is the emulator's clock offset (a token that expires mid-rotation).
	clock *offsetClock
	// note is what the row saw beyond the expected outcome (for the table's hit column).
	note string
	// window is the agent's certagent_graph_read_to_write_seconds histogram.
	window histogram
}

// histogram is a Prometheus histogram as /metrics shows it: cumulative bucket counts by
// upper bound, the sum and the count.
type histogram struct {
	buckets map[float64]float64
	sum     float64
	count   float64
}

func (h *histogram) add(o histogram) {
	if h.buckets == nil {
		h.buckets = map[float64]float64{}
	}
	for le, n := range o.buckets {
		h.buckets[le] += n
	}
	h.sum += o.sum
	h.count += o.count
}

// quantile returns the upper bound of the bucket holding the q-th quantile.
func (h histogram) quantile(q float64) float64 {
	les := make([]float64, 0, len(h.buckets))
	for le := range h.buckets {
		les = append(les, le)
	}
	slices.Sort(les)
	for _, le := range les {
		if h.buckets[le] >= q*h.count {
			return le
		}
	}
	return math.Inf(1)
}

var bucketRE = regexp.MustCompile(`^certagent_graph_read_to_write_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$`)

// readToWrite reads the agent's read-to-write histogram from /metrics.
func readToWrite(m *mx) histogram {
	h := histogram{buckets: map[float64]float64{}}
	b, err := m.a.Client.Metrics(context.Background())
	if err != nil {
		return h
	}
	for _, line := range strings.Split(string(b), "\n") {
		if s := bucketRE.FindStringSubmatch(line); s != nil {
			le, _ := strconv.ParseFloat(s[1], 64)
			n, _ := strconv.ParseFloat(s[2], 64)
			h.buckets[le] = n
		} else if v, ok := strings.CutPrefix(line, "certagent_graph_read_to_write_seconds_sum "); ok {
			h.sum, _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutPrefix(line, "certagent_graph_read_to_write_seconds_count "); ok {
			h.count, _ = strconv.ParseFloat(v, 64)
		}
	}
	return h
}

// offsetClock is a clock that a test moves forward.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// requests counts the emulator's answered requests since the drop with method and a path
// containing part.
func (m *mx) requests(method, part string) int {
	n := 0
	for _, r := range m.env.Emu().Requests() {
		if r.Time.After(m.begin) && r.Method == method && strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}

// waitInFlight waits until the emulator is serving a request with method.
func (m *mx) waitInFlight(method string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range m.env.Emu().InFlight() {
			if r.Method == method {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	m.t.Fatalf("no %s reached the emulator", method)
}

// result waits for the rotation of the row's certificate to end in applied, confirmed,
// failed or rejected.
func (m *mx) result(d time.Duration) apitype.Rotation {
	deadline := time.Now().Add(d)
	for {
		rs, err := m.a.Client.Rotations(context.Background(), "")
		if err == nil {
			for _, r := range rs {
				if r.Certificate.Thumbprint == m.thumb {
					switch r.State {
					case "applied", "confirmed", "failed", "rejected":
						return r
					}
				}
			}
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("the rotation did not end within %s; agent log:\n%s", d, tail(m.a.Log(), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// faultCase is one row of the Graph fault matrix.
type faultCase struct {
	name string
	// want is the expected end: "applied" or "failed <code>".
	want string
	// retried, when set, is the request that must have been sent more than once (method
	// and a part of its path): the fault was retried, not fatal.
	retried [2]string
	edit    func(*config.Config)
	emu     func(m *mx) []emulator.Option
	// before runs after the agent is ready and before the certificate is dropped.
	before func(m *mx)
	// during runs while the rotation is under way.
	during func(m *mx)
	// check returns violations beyond the common ones.
	check func(m *mx, r apitype.Rotation) []string
	// lostOK lists keyIds (by thumbprint of the certificate) the row itself removed.
	removed func(m *mx) []string
}

func patchFault(f emulator.Fault) func(m *mx) {
	return func(m *mx) {
		f.Method, f.Path = "PATCH", "/v1.0/applications/"+m.targetObj
		if err := m.env.Emu().AddFaults(f); err != nil {
			m.t.Fatal(err)
		}
	}
}

func getFault(f emulator.Fault) func(m *mx) {
	return func(m *mx) {
		f.Method, f.Path = "GET", "/v1.0/applications(appId='"+m.target+"')"
		if err := m.env.Emu().AddFaults(f); err != nil {
			m.t.Fatal(err)
		}
	}
}

// portalAdd adds a certificate to the target app as a person in the portal would, and
// returns its keyId.
func (m *mx) portalAdd(cn string) emulator.KeyCredentialView {
	c := certtest.New(time.Now(), certtest.CommonName(cn))
	kc, err := m.env.Emu().PortalAddKeyCredential(m.target, emulator.SeedKeyCredential{Certificate: c.DER, DisplayName: "uploaded in the portal"})
	if err != nil {
		m.t.Fatal(err)
	}
	return kc
}

func has(creds []emulator.KeyCredentialView, keyID string) bool {
	return slices.ContainsFunc(creds, func(c emulator.KeyCredentialView) bool { return strings.EqualFold(c.KeyID, keyID) })
}

// faultCases is the Graph fault matrix: one row per fault, each with its expected outcome.
func faultCases() []faultCase {
	var portalKept, portalRemoved emulator.KeyCredentialView
	keep := func(what string, kc *emulator.KeyCredentialView, want bool) func(m *mx, r apitype.Rotation) []string {
		return func(m *mx, r apitype.Rotation) []string {
			if has(m.env.Creds(m.target), kc.KeyID) != want {
				return []string{fmt.Sprintf("%s %s: on the app %v, want %v", what, kc.KeyID, !want, want)}
			}
			return nil
		}
	}
	return []faultCase{
		{name: "429 with Retry-After: 1 on the PATCH", want: "applied", retried: [2]string{"PATCH", ""},
			before: patchFault(emulator.Fault{Status: 429, RetryAfter: 1})},
		{name: "429 with Retry-After: 0.4 (fractional) on the PATCH", want: "applied", retried: [2]string{"PATCH", ""},
			before: patchFault(emulator.Fault{Status: 429, RetryAfter: 0.4})},
		{name: "429 on the read, 3 times", want: "applied", retried: [2]string{"GET", "applications("},
			before: getFault(emulator.Fault{Status: 429, RetryAfter: 0.2, Times: 3})},
		{name: "500 on the PATCH", want: "applied", retried: [2]string{"PATCH", ""}, before: patchFault(emulator.Fault{Status: 500})},
		{name: "502 on the PATCH", want: "applied", retried: [2]string{"PATCH", ""}, before: patchFault(emulator.Fault{Status: 502})},
		{name: "503 on the PATCH", want: "applied", retried: [2]string{"PATCH", ""}, before: patchFault(emulator.Fault{Status: 503, RetryAfter: 0.3})},
		{name: "504 on the PATCH", want: "applied", retried: [2]string{"PATCH", ""}, before: patchFault(emulator.Fault{Status: 504, RetryAfter: 0.3})},
		{name: "503 on every request until cleared (Graph down): gives up", want: "failed graph_unavailable",
			edit: func(c *config.Config) { c.Graph.MaxAttempts = 2 },
			before: func(m *mx) {
				m.env.Emu().AddFaults(emulator.Fault{Path: "/v1.0/", Status: 503, RetryAfter: 0.1, Times: emulator.UntilCleared})
			}},
		{name: "connection reset before the request body is served (write lost)", want: "applied", retried: [2]string{"PATCH", ""},
			before: patchFault(emulator.Fault{Reset: true})},
		{name: "connection reset after the PATCH was served (write landed, answer lost)", want: "applied",
			before: patchFault(emulator.Fault{ResetAfter: true})},
		{name: "connection reset on the read", want: "applied", retried: [2]string{"GET", "applications("},
			before: getFault(emulator.Fault{Reset: true})},
		{name: "PATCH answer later than graph.timeout (2s; the write lands after the client gave up)", want: "applied",
			edit:   func(c *config.Config) { c.Graph.Timeout = config.Duration(2 * time.Second) },
			before: patchFault(emulator.Fault{DelayMs: 3000})},
		{name: "read answer later than graph.timeout (2s)", want: "applied",
			edit:   func(c *config.Config) { c.Graph.Timeout = config.Duration(2 * time.Second) },
			before: getFault(emulator.Fault{DelayMs: 3000})},
		{name: "tokens that live 2 s (each expires during the rotation)", want: "applied",
			emu:    func(m *mx) []emulator.Option { return []emulator.Option{emulator.WithTokenLifetime(2 * time.Second)} },
			before: patchFault(emulator.Fault{DelayMs: 2500})},
		{name: "the cached token expires between the read and the PATCH (Graph's clock 12 min on, token lifetime 6 min)", want: "applied",
			emu: func(m *mx) []emulator.Option {
				return []emulator.Option{emulator.WithTokenLifetime(6 * time.Minute), emulator.WithClock(m.clock.Now)}
			},
			before: patchFault(emulator.Fault{DelayMs: 1000}),
			during: func(m *mx) { m.waitInFlight("PATCH"); m.clock.Advance(12 * time.Minute) }},
		{name: "403: the agent no longer owns the target app", want: "failed graph_denied",
			before: func(m *mx) {
				if err := m.env.Emu().SetOwners(m.target); err != nil {
					m.t.Fatal(err)
				}
			}},
		{name: "404: the target app was deleted", want: "failed app_not_found",
			before: func(m *mx) {
				if err := m.env.Emu().RemoveApplication(m.target); err != nil {
					m.t.Fatal(err)
				}
			}},
		{name: "400: Graph refuses the credential (Directory_ResourceSizeExceeded)", want: "failed app_full",
			emu: func(m *mx) []emulator.Option { return []emulator.Option{emulator.WithObjectSizeLimit(2000)} }},
		{name: "400 BadRequest on the PATCH", want: "failed graph_bad_request",
			before: patchFault(emulator.Fault{Status: 400, Message: "Invalid value specified for property 'keyCredentials' of resource 'Application'."})},
		{name: "stale read before the write, after a portal upload", want: "applied",
			before: func(m *mx) {
				portalKept = m.portalAdd("portal before, read stale")
				getFault(emulator.Fault{Stale: true})(m)
			},
			check: keep("portal upload", &portalKept, true)},
		{name: "stale reads in the read-back", want: "applied",
			before: func(m *mx) {
				f := emulator.Fault{Method: "GET", Path: "/v1.0/applications(appId='" + m.target + "')", Stale: true, Times: 3}
				// The first two reads come before the write: let them pass, then go stale.
				go func() {
					for m.requests("PATCH", "") == 0 {
						time.Sleep(time.Millisecond)
					}
					m.env.Emu().AddFaults(f)
				}()
				patchFault(emulator.Fault{DelayMs: 200})(m)
			},
			check: func(m *mx, r apitype.Rotation) []string {
				if n := m.requests("PATCH", ""); n != 1 {
					return []string{fmt.Sprintf("%d PATCHes, want 1: a stale read-back must not cause a second write", n)}
				}
				return nil
			}},
		{name: "portal upload and portal delete just before the rotation", want: "applied",
			before: func(m *mx) {
				portalKept = m.portalAdd("portal just before")
				portalRemoved = m.env.Creds(m.target)[0]
				if err := m.env.Emu().RemoveKeyCredential(m.target, portalRemoved.KeyID); err != nil {
					m.t.Fatal(err)
				}
			},
			removed: func(m *mx) []string { return []string{portalRemoved.KeyID} },
			check: func(m *mx, r apitype.Rotation) []string {
				v := keep("portal upload", &portalKept, true)(m, r)
				return append(v, keep("portal delete", &portalRemoved, false)(m, r)...)
			}},
		{name: "portal upload after the rotation, then another rotation", want: "applied",
			check: func(m *mx, r apitype.Rotation) []string {
				kc := m.portalAdd("portal after")
				c := certtest.New(time.Now(), certtest.CommonName("second rotation"))
				if _, _, err := m.a.Client.Submit(context.Background(), c.PEM(), "second.cer"); err != nil {
					return []string{"second submission: " + err.Error()}
				}
				m.thumb = certs.ThumbprintSHA1(c.DER)
				if r2 := m.result(60 * time.Second); r2.State != "applied" {
					return []string{"second rotation " + r2.State}
				}
				return keep("portal upload", &kc, true)(m, r)
			}},
	}
}

// residualCases are the edits no read can show: they land inside the write. Their outcome
// is measured and reported, not required (README, "Concurrent edits").
func residualCases() []faultCase {
	var added, removed emulator.KeyCredentialView
	return []faultCase{
		{name: "portal upload while the PATCH is in flight", want: "applied",
			before: patchFault(emulator.Fault{DelayMs: 1500}),
			during: func(m *mx) { m.waitInFlight("PATCH"); added = m.portalAdd("portal during") },
			check: func(m *mx, r apitype.Rotation) []string {
				m.note = "upload kept"
				if !has(m.env.Creds(m.target), added.KeyID) {
					m.note = "upload LOST (no read could show it)"
				}
				return nil
			},
			removed: func(m *mx) []string { return []string{added.KeyID} }},
		{name: "portal delete while the PATCH is in flight", want: "applied",
			before: patchFault(emulator.Fault{DelayMs: 1500}),
			during: func(m *mx) {
				m.waitInFlight("PATCH")
				removed = m.env.Creds(m.target)[0]
				m.env.Emu().RemoveKeyCredential(m.target, removed.KeyID)
			},
			check: func(m *mx, r apitype.Rotation) []string {
				m.note = "delete kept"
				if has(m.env.Creds(m.target), removed.KeyID) {
					m.note = "deleted credential WRITTEN BACK (no read could show the delete)"
				}
				return nil
			},
			removed: func(m *mx) []string { return []string{removed.KeyID} }},
	}
}

// TestGraphFaultMatrix runs every Graph fault against a real agent: a certificate dropped
// while the fault is injected must end as the row expects (applied once, or failed with the
// right code), with no credential lost or duplicated.
func TestGraphFaultMatrix(t *testing.T) {
	needStress(t)
	var window histogram
	for _, res := range []bool{false, true} {
		cases := faultCases()
		if res {
			cases = residualCases()
		}
		for _, fc := range cases {
			var m *mx
			var viol []string
			ok := t.Run(fc.name, func(t *testing.T) {
				m, viol = runFaultCase(t, fc)
				for _, v := range viol {
					t.Error(v)
				}
			})
			if m == nil && ok {
				continue // not selected by -run
			}
			row := Row{Group: "graph", Name: fc.name, Runs: 1, Violations: len(viol), Target: fc.want + " once; nothing lost or duplicated"}
			if m != nil {
				row.Hit = m.note
				window.add(m.window)
			}
			if !ok && len(viol) == 0 {
				row.Fail = true
			}
			if res {
				row.Name = "residual: " + fc.name
				row.Target = "measured (README, Concurrent edits)"
				row.Violations = 0
			}
			table.Add(row)
		}
	}
	if window.count > 0 {
		table.Add(Row{Group: "graph", Name: "window between the last read's answer and the PATCH (certagent_graph_read_to_write_seconds)",
			Runs: int(window.count), Hit: fmt.Sprintf("mean %.2f ms; p50 <= %g ms, p99 <= %g ms (histogram buckets)", window.sum/window.count*1000, window.quantile(.5)*1000, window.quantile(.99)*1000),
			Target: "measured"})
	}
}

func runFaultCase(t *testing.T, fc faultCase) (*mx, []string) {
	m := &mx{t: t, clock: &offsetClock{}}
	var emuOpts []emulator.Option
	if fc.emu != nil {
		emuOpts = fc.emu(m)
	}
	m.env = e2e.NewEnvWith(t, func(c *config.Config) {
		c.Intake.Settle = config.Duration(150 * time.Millisecond)
		if fc.edit != nil {
			fc.edit(c)
		}
	}, emuOpts...)
	m.target = m.env.Info.TargetAppID
	app, err := m.env.Emu().Application(m.target)
	if err != nil {
		t.Fatal(err)
	}
	m.targetObj = app.ObjectID
	m.a = m.env.StartAgent()
	// Let the first read settle so that the ledger knows the app.
	m.a.WaitFor("first read of the app", 30*time.Second, func() bool {
		s, err := m.a.Client.Status(context.Background())
		return err == nil && s.LastSync.At != nil
	})
	if fc.before != nil {
		fc.before(m)
	}
	if app, err := m.env.Emu().Application(m.target); err == nil {
		m.before = app.KeyCredentials
	}
	m.cert = certtest.New(time.Now(), certtest.CommonName("matrix "+fc.name))
	m.thumb = certs.ThumbprintSHA1(m.cert.DER)
	m.begin = time.Now()
	writeDrop(t, m.env, "matrix.cer", m.cert.PEM())
	var wg sync.WaitGroup
	if fc.during != nil {
		wg.Go(func() { fc.during(m) })
	}
	r := m.result(3 * time.Minute)
	wg.Wait()
	m.env.Emu().ClearFaults()

	var viol []string
	got := r.State
	if r.State == "failed" || r.State == "rejected" {
		got = r.State + " " + string(r.Reason.Code)
	}
	if got == "confirmed" {
		got = "applied"
	}
	if got != fc.want {
		msg := ""
		if r.Reason != nil {
			msg = ": " + r.Reason.Message
		}
		viol = append(viol, fmt.Sprintf("ended %s, want %s%s", got, fc.want, msg))
	}
	if m.note == "" {
		m.note = got
		if fc.retried[0] != "" {
			m.note += fmt.Sprintf(", %d %s", m.requests(fc.retried[0], fc.retried[1]), fc.retried[0])
		}
		var answers []string
		for _, r := range m.env.Emu().Requests() {
			if r.Time.After(m.begin) && (r.Method == "PATCH" || r.Status >= 400 || r.Status == 0) {
				s := fmt.Sprintf("%s %d", r.Method, r.Status)
				if r.Status == 0 {
					s = r.Method + " reset"
				}
				if r.Fault != "" {
					s += " (" + r.Fault + ")"
				}
				answers = append(answers, s)
			}
		}
		if len(answers) > 6 {
			answers = append(answers[:6], "...")
		}
		if len(answers) > 0 {
			m.note += "; " + strings.Join(answers, ", ")
		}
	}
	if fc.retried[0] != "" && m.requests(fc.retried[0], fc.retried[1]) < 2 {
		viol = append(viol, fmt.Sprintf("%s sent %d times: not retried", fc.retried[0], m.requests(fc.retried[0], fc.retried[1])))
	}
	if fc.check != nil {
		viol = append(viol, fc.check(m, r)...)
	}
	if app, err := m.env.Emu().Application(m.target); err == nil {
		now := app.KeyCredentials
		want := 0
		if strings.HasPrefix(fc.want, "applied") {
			want = 1
		}
		if n := e2e.CountThumb(now, certs.ThumbprintSHA1(m.cert.DER)); n != want {
			viol = append(viol, fmt.Sprintf("the app holds the certificate %d times, want %d", n, want))
		}
		var removed []string
		if fc.removed != nil {
			removed = fc.removed(m)
		}
		for _, c := range m.before {
			if !has(now, c.KeyID) && !slices.Contains(removed, c.KeyID) {
				viol = append(viol, fmt.Sprintf("credential %s (%s) lost", c.KeyID, c.Thumbprint))
			}
		}
		seen := map[string]bool{}
		for _, c := range now {
			if seen[c.Thumbprint] {
				viol = append(viol, "certificate "+c.Thumbprint+" twice on the app")
			}
			seen[c.Thumbprint] = true
		}
	}
	m.window = readToWrite(m)
	return m, viol
}

func writeDrop(t *testing.T, env *e2e.Env, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(env.Config.DropFolder, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
