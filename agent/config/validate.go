package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/certpolicy"
	"github.com/aucloud/certagent/agent/provenance"
)

// Validate checks the values of the configuration without touching the disk or the network,
// and returns every problem as Errors (nil when there is none). Load and Parse run it; call it
// again after changing a Config in code. A Config read from a file names the line of each
// problem; one built in code has no lines.
func (c *Config) Validate() error { return c.validate(nil).err() }

// checker collects the problems Validate finds.
type checker struct {
	c *Config
	// skip holds keys whose value failed to decode; see decoder.failed.
	skip map[string]bool
	errs Errors
}

func (c *Config) validate(skip map[string]bool) Errors {
	k := &checker{c: c, skip: skip}
	if skip[""] {
		return nil
	}
	k.tenant()
	k.cloud()
	k.auth()
	k.target()
	k.paths()
	k.intake()
	k.policy()
	k.provenance()
	k.api()
	k.log()
	k.graph()
	k.monitor()
	k.notify()
	return k.errs
}

// skipped reports whether key, or a section or list holding it, failed to decode.
func (k *checker) skipped(key string) bool {
	for p := key; p != ""; p = parentKey(p) {
		if k.skip[p] {
			return true
		}
	}
	return false
}

func (k *checker) add(key, format string, args ...any) {
	if k.skipped(key) {
		return
	}
	k.errs = append(k.errs, &Error{File: k.c.File, Line: k.c.lineOf(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// required reports a missing key at the line of its section, or line 1 when the section is
// missing too.
func (k *checker) required(key, format string, args ...any) {
	if k.skipped(key) {
		return
	}
	line := k.c.lineOf(key)
	if line == 0 && k.c.lines != nil {
		line = 1
	}
	k.errs = append(k.errs, &Error{File: k.c.File, Line: line, Key: key, Msg: "is required: " + fmt.Sprintf(format, args...), missing: true})
}

// lineOf returns the line of key in the file, or of the nearest section or list holding it,
// or 0.
func (c *Config) lineOf(key string) int {
	for p := key; p != ""; p = parentKey(p) {
		if line, ok := c.lines[p]; ok {
			return line
		}
	}
	return 0
}

// parentKey returns the key holding key: "policy" for "policy.min_rsa_bits",
// "policy.allowed_subjects" for "policy.allowed_subjects[2]", "" at the top.
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
	}
	parent, _ := splitKey(key)
	return parent
}

func (k *checker) tenant() {
	t := k.c.TenantID
	switch {
	case t == "":
		k.required("tenant_id", "the directory (tenant) ID of your Entra ID tenant, a GUID, or one of its verified domains such as contoso.onmicrosoft.com (`certagent setup` writes it)")
	case looksLikeGUID(t):
		if msg := guidProblem(t); msg != "" {
			k.add("tenant_id", "%s", msg)
		}
	case multiTenantNames[strings.ToLower(t)]:
		k.add("tenant_id", "%q names no tenant; give your tenant's ID (a GUID) or a verified domain such as contoso.onmicrosoft.com", t)
	case !isDomain(t):
		k.add("tenant_id", "must be a GUID or a verified domain such as contoso.onmicrosoft.com, not %q", t)
	}
}

// multiTenantNames are the authority segments of multi-tenant sign-in, which an app signing in
// as itself cannot use.
var multiTenantNames = map[string]bool{"common": true, "organizations": true, "consumers": true}

func (k *checker) cloud() {
	cl := k.c.Cloud
	switch cl.Name {
	case CloudPublic, CloudUSGovernment, CloudChina:
	case CloudCustom:
		if cl.AuthorityHost == "" {
			k.required("cloud.authority_host", "with cloud.name custom, the Entra ID sign-in endpoint, e.g. https://login.microsoftonline.com/")
		}
		if cl.GraphURL == "" {
			k.required("cloud.graph_url", "with cloud.name custom, the Microsoft Graph endpoint, e.g. https://graph.microsoft.com")
		}
	default:
		k.add("cloud.name", "must be public, usgovernment, china or custom, not %q", cl.Name)
	}
	if cl.AuthorityHost != "" {
		if msg := urlProblem(cl.AuthorityHost, false); msg != "" {
			k.add("cloud.authority_host", "%s", msg)
		}
	}
	if cl.GraphURL != "" {
		if msg := urlProblem(cl.GraphURL, false); msg != "" {
			k.add("cloud.graph_url", "%s", msg)
		} else if u, _ := url.Parse(cl.GraphURL); isVersionPath(u.Path) {
			k.add("cloud.graph_url", "must not include the API version (%s); give the endpoint alone, e.g. https://graph.microsoft.com", strings.Trim(u.Path, "/"))
		}
	}
	if cl.CAFile != "" {
		k.absolute("cloud.ca_file", cl.CAFile)
	}
}

func isVersionPath(p string) bool {
	last := p[strings.LastIndexByte(p, '/')+1:]
	if last == "" {
		last = strings.Trim(p, "/")
		last = last[strings.LastIndexByte(last, '/')+1:]
	}
	return last == "v1.0" || last == "beta"
}

func (k *checker) auth() {
	a := k.c.Auth
	switch {
	case a.ClientID == "":
		k.required("auth.client_id", "the application (client) ID of the agent's own app registration (`certagent setup` creates it and writes it here)")
	default:
		if msg := guidProblem(a.ClientID); msg != "" {
			k.add("auth.client_id", "%s", msg)
		}
	}
	if a.Method != AuthCertificate {
		k.add("auth.method", "must be %q (the only method today), not %q", AuthCertificate, a.Method)
	}
	switch a.KeyBits {
	case 2048, 3072, 4096:
	default:
		k.add("auth.key_bits", "must be 2048, 3072 or 4096, not %d", a.KeyBits)
	}
	if a.Validity < Duration(day) {
		k.add("auth.validity", "must be at least 1d, not %s", a.Validity)
	}
	switch {
	case a.RenewBefore <= 0:
		k.add("auth.renew_before", "must be positive, not %s", a.RenewBefore)
	case a.RenewBefore >= a.Validity && a.Validity >= Duration(day):
		k.add("auth.renew_before", "must be shorter than auth.validity (%s), not %s; the agent would renew its certificate as soon as it made it", a.Validity, a.RenewBefore)
	}
}

// target checks target, or each entry of targets: names, tenants, app ids, policy
// overrides and retire.
func (k *checker) target() {
	c := k.c
	if len(c.Targets) > 0 && c.Target.AppID != "" {
		k.add("targets", "use target or targets, not both: move target's app_id into a targets entry")
		return
	}
	if len(c.Targets) == 0 {
		k.oneTarget("target", c.Target, false)
		return
	}
	names := map[string]string{}
	apps := map[string]string{}
	for i, t := range c.Targets {
		key := fmt.Sprintf("targets[%d]", i)
		k.oneTarget(key, t, true)
		if first, dup := names[t.Name]; dup && t.Name != "" {
			k.add(key+".name", "%q is the name of %s already; each target needs its own", t.Name, first)
		}
		names[t.Name] = key
		if first, dup := apps[strings.ToLower(t.AppID)]; dup && t.AppID != "" {
			k.add(key+".app_id", "is the app_id of %s already; each app registration is one target", first)
		}
		apps[strings.ToLower(t.AppID)] = key
	}
}

// targetName is what a target's name may be: it names a folder inside the drop folder.
var targetName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

func (k *checker) oneTarget(key string, t Target, inList bool) {
	switch {
	case t.Name == "" && inList:
		k.required(key+".name", "a short name for the target (lower-case letters, digits and dashes), such as exchange")
	case t.Name != "" && !targetName.MatchString(t.Name):
		k.add(key+".name", "must be 1 to 40 lower-case letters, digits and dashes, starting and ending with a letter or digit, not %q", t.Name)
	case t.Name == "processed" || t.Name == "rejected":
		k.add(key+".name", "%q is taken by the drop folder's own %s/ folder; choose another name", t.Name, t.Name)
	}
	if t.TenantID != "" && !isDomain(t.TenantID) && guidProblem(t.TenantID) != "" {
		k.add(key+".tenant_id", "must be a GUID or a verified domain such as contoso.onmicrosoft.com, not %q", t.TenantID)
	}
	id := t.AppID
	switch {
	case id == "":
		k.required(key+".app_id", "the application (client) ID of the app registration that receives the provider's certificates (`certagent setup` finds it and writes it here)")
	case guidProblem(id) != "":
		k.add(key+".app_id", "%s", guidProblem(id))
	case strings.EqualFold(id, k.c.Auth.ClientID):
		k.add(key+".app_id", "must not be auth.client_id: the agent's own app registration is not a target (it owns the target)")
	}
	if a := t.Policy.Approval; a != "" && a != ApprovalAuto && a != ApprovalManual {
		k.add(key+".policy.approval", "must be auto or manual, not %q", a)
	}
	cp := certpolicy.Policy{AllowedSubjects: t.Policy.AllowedSubjects, AllowedIssuers: t.Policy.AllowedIssuers, AllowedThumbprints: t.Policy.AllowedThumbprints}
	for _, err := range unjoin(cp.Validate()) {
		var fe *certpolicy.FieldError
		if errors.As(err, &fe) && strings.HasPrefix(fe.Field, "allowed_") {
			k.add(key+".policy."+fe.Field, "%s", fe.Message)
		}
	}
	if t.Retire.Enabled {
		p := k.c.Policy
		if len(t.Policy.AllowedSubjects)+len(t.Policy.AllowedIssuers)+len(t.Policy.AllowedThumbprints)+
			len(p.AllowedSubjects)+len(p.AllowedIssuers)+len(p.AllowedThumbprints) == 0 {
			k.add(key+".retire.enabled", "needs an allow-list (allowed_subjects, allowed_issuers or allowed_thumbprints, in %s.policy or policy): the agent removes only certificates the policy names as the provider's", key)
		}
	}
	if a := t.Retire.After; a != 0 && a < Duration(day) {
		k.add(key+".retire.after", "must be at least 1d, not %s", a)
	}
	k.provenanceKeys(key+".provenance", t.Provenance)
	if t.Provenance.Wait != 0 {
		k.wait(key+".provenance.wait", t.Provenance.Wait)
	}
	if t.Provenance.Required && len(t.Provenance.Keys)+len(k.c.Provenance.Keys) == 0 {
		k.add(key+".provenance.required", "needs a key: pin the provider's public signing key in %s.provenance.keys or provenance.keys", key)
	}
	k.source(key+".source", t.Source)
}

// provenance checks the top-level provenance section. A target's keys may stand in for the
// top level's: required without keys is a mistake only when some target has none.
func (k *checker) provenance() {
	p := k.c.Provenance
	k.provenanceKeys("provenance", p)
	k.wait("provenance.wait", p.Wait)
	if !p.Required || len(p.Keys) > 0 {
		return
	}
	ts := k.c.Targets
	if len(ts) == 0 {
		ts = []Target{k.c.Target}
	}
	for _, t := range ts {
		if len(t.Provenance.Keys) == 0 {
			k.add("provenance.required", "needs a key: pin the provider's public signing key in provenance.keys (a PEM file, or the PEM itself)")
			return
		}
	}
}

// provenanceKeys checks the entries of a provenance.keys list: PEM written in place must hold
// keys certagent takes; a path must be absolute (after resolving against the config file;
// CheckFiles reads it).
func (k *checker) provenanceKeys(section string, p Provenance) {
	for i, e := range p.Keys {
		key := fmt.Sprintf("%s.keys[%d]", section, i)
		switch {
		case strings.TrimSpace(e) == "":
			k.add(key, "must not be empty: a key file's path, or the PEM of the key")
		case provenance.IsInline(e):
			if _, err := provenance.ParseKeys(key, []byte(e)); err != nil {
				k.add(key, "%v", err)
			}
		default:
			k.absolute(key, e)
		}
	}
}

// wait checks a provenance.wait.
func (k *checker) wait(key string, d Duration) {
	switch {
	case d < Duration(time.Second):
		k.add(key, "must be at least 1s, not %s", d)
	case d > Duration(7*day):
		k.add(key, "must be at most 7d, not %s; a delivery's two files arrive together", d)
	}
}

// source checks a target's source section.
func (k *checker) source(section string, s Source) {
	if s.URL != "" {
		if msg := urlProblem(s.URL, true); msg != "" {
			k.add(section+".url", "%s", msg)
		} else if u, _ := url.Parse(s.URL); u.Path == "" || strings.HasSuffix(u.Path, "/") {
			k.add(section+".url", "must name the certificate itself (https://provider.example/customers/contoso/next.cer), not a folder: the agent fetches url and url + \".sig\"")
		}
	}
	if s.Interval != 0 && (s.Interval < Duration(time.Minute) || s.Interval > Duration(30*day)) {
		k.add(section+".interval", "must be from 1m to 30d, not %s", s.Interval)
	}
	if s.CAFile != "" {
		k.absolute(section+".ca_file", s.CAFile)
	}
}

// paths checks the paths: present, absolute, and not on top of each other.
func (k *checker) paths() {
	c := k.c
	for _, f := range []struct {
		key, p, what string
	}{
		{"state_dir", c.StateDir, "the folder of the agent's state"},
		{"drop_folder", c.DropFolder, "the folder the provider's certificates arrive in"},
		{"auth.certificate_file", c.Auth.CertificateFile, "the agent's certificate file"},
		{"auth.key_file", c.Auth.KeyFile, "the agent's private key file"},
		{"api.token_file", c.API.TokenFile, "the API token file"},
	} {
		if f.p == "" {
			k.required(f.key, "%s", f.what)
			continue
		}
		k.absolute(f.key, f.p)
	}
	if c.Log.File != "" {
		k.absolute("log.file", c.Log.File)
	}

	// Files the agent writes must be distinct.
	files := []struct{ key, p string }{
		{"auth.certificate_file", c.Auth.CertificateFile},
		{"auth.key_file", c.Auth.KeyFile},
		{"api.token_file", c.API.TokenFile},
		{"log.file", c.Log.File},
	}
	for i, a := range files {
		for _, b := range files[:i] {
			if a.p != "" && samePath(a.p, b.p) {
				k.add(a.key, "is the same file as %s (%s)", b.key, b.p)
			}
		}
	}
	// The agent moves every file it finds in the drop folder: its own files there would be
	// taken for deliveries (agent.key would be "rejected" as a private key).
	if c.DropFolder == "" {
		return
	}
	if samePath(c.DropFolder, c.StateDir) {
		k.add("drop_folder", "must not be state_dir (%s): the agent would take its own files for deliveries", c.StateDir)
		return
	}
	for _, f := range files {
		if f.p != "" && samePath(filepath.Dir(f.p), c.DropFolder) {
			k.add("drop_folder", "must not hold %s (%s): the agent would take it for a delivery", f.key, f.p)
		}
	}
}

func (k *checker) absolute(key, p string) {
	if !filepath.IsAbs(p) {
		k.add(key, "must be an absolute path, not %q", p)
	}
}

// samePath reports whether a and b name the same path, without touching the disk.
func samePath(a, b string) bool {
	a, b = filepath.Clean(a), filepath.Clean(b)
	if runtime.GOOS == "windows" {
		return strings.EqualFold(a, b) // NTFS names do not care about case
	}
	return a == b
}

func (k *checker) intake() {
	in := k.c.Intake
	k.positive("intake.settle", in.Settle)
	k.positive("intake.rescan_interval", in.RescanInterval)
	k.positive("intake.poll_interval", in.PollInterval)
}

func (k *checker) positive(key string, d Duration) {
	if d <= 0 {
		k.add(key, "must be positive, not %s", d)
	}
}

// maxMinValidityDays bounds policy.min_validity_days (100 years): more is a mistake, and
// would overflow a time.Duration.
const maxMinValidityDays = 36500

func (k *checker) policy() {
	p := k.c.Policy
	if p.Approval != ApprovalAuto && p.Approval != ApprovalManual {
		k.add("policy.approval", "must be auto or manual, not %q", p.Approval)
	}
	cp := p.CertPolicy()
	if p.MinValidityDays > maxMinValidityDays {
		k.add("policy.min_validity_days", "must be at most %d, not %d", maxMinValidityDays, p.MinValidityDays)
		cp.MinValidity = 0
	}
	for _, err := range unjoin(cp.Validate()) {
		var fe *certpolicy.FieldError
		if errors.As(err, &fe) {
			k.add("policy."+fe.Field, "%s", fe.Message)
		} else {
			k.add("policy", "%v", err)
		}
	}
	if _, err := certpolicy.ParseNameTemplate(p.DisplayNameTemplate); err != nil {
		k.add("policy.display_name_template", "%v", err)
	}
}

// unjoin splits an errors.Join result into its errors.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (k *checker) api() {
	if msg := listenProblem(k.c.API.Listen); msg != "" {
		k.add("api.listen", "%s", msg)
	}
}

// listenProblem describes what is wrong with an api.listen address, or returns "". Only a
// literal loopback IP or the name localhost is taken: no name is looked up.
func listenProblem(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("must be host:port, such as %s, not %q", DefaultListen, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port must be a number from 1 to 65535, not %q", port)
	}
	const loopbackOnly = "; the API listens on loopback only (127.0.0.1, ::1 or localhost)"
	if host == "" {
		return fmt.Sprintf("%q listens on every address%s", addr, loopbackOnly)
	}
	if strings.EqualFold(host, "localhost") {
		return ""
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Sprintf("%q is not an IP address or localhost (names are not looked up)%s", host, loopbackOnly)
	}
	if !ip.IsLoopback() {
		return fmt.Sprintf("%s is not a loopback address%s", host, loopbackOnly)
	}
	return ""
}

func (k *checker) log() {
	switch k.c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		k.add("log.level", "must be debug, info, warn or error, not %q", k.c.Log.Level)
	}
	switch k.c.Log.Format {
	case LogText, LogJSON:
	default:
		k.add("log.format", "must be text or json, not %q", k.c.Log.Format)
	}
}

func (k *checker) graph() {
	g := k.c.Graph
	if g.Timeout < Duration(time.Second) {
		k.add("graph.timeout", "must be at least 1s, not %s", g.Timeout)
	}
	if g.MaxAttempts < 1 || g.MaxAttempts > 100 {
		k.add("graph.max_attempts", "must be from 1 to 100, not %d", g.MaxAttempts)
	}
}

func (k *checker) monitor() {
	m := k.c.Monitor
	// Graph throttles clients that poll hard; the agent also reads after every upload.
	if m.SyncInterval < Duration(time.Minute) {
		k.add("monitor.sync_interval", "must be at least 1m, not %s", m.SyncInterval)
	}
	if m.ExpiryWarning < 0 {
		k.add("monitor.expiry_warning", "must not be negative (0 turns the warning off), not %s", m.ExpiryWarning)
	}
	seen := map[Duration]bool{}
	for i, t := range m.ExpiryThresholds {
		key := fmt.Sprintf("monitor.expiry_thresholds[%d]", i)
		switch {
		case t < Duration(day) || t%Duration(day) != 0:
			k.add(key, "must be whole days, at least 1d, not %s", t)
		case seen[t]:
			k.add(key, "%s is listed twice", t)
		}
		seen[t] = true
	}
}

func (k *checker) notify() {
	n := k.c.Notify
	if n.WebhookURL != "" {
		if msg := urlProblem(n.WebhookURL, true); msg != "" {
			k.add("notify.webhook_url", "%s", msg)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(n.Headers)) {
		value := n.Headers[name]
		key := mapKey("notify.headers", name)
		switch {
		case !isToken(name):
			k.add(key, "%q is not a valid HTTP header name", name)
		case reservedHeaders[strings.ToLower(name)]:
			k.add(key, "is set by the HTTP client and cannot be configured")
		case webhookHeaders[strings.ToLower(name)]:
			k.add(key, "is set by certagent (Standard Webhooks) and cannot be configured")
		case strings.ContainsAny(value, "\r\n\x00"):
			k.add(key, "the value must be one line")
		}
	}
	k.positive("notify.timeout", n.Timeout)
	if n.SecretFile != "" {
		k.absolute("notify.secret_file", n.SecretFile)
	}
}

// webhookHeaders are the headers certagent sets on each delivery.
var webhookHeaders = map[string]bool{"webhook-id": true, "webhook-timestamp": true, "webhook-signature": true, "content-type": true}

// reservedHeaders are the headers Go's HTTP client writes itself.
var reservedHeaders = map[string]bool{"host": true, "content-length": true, "transfer-encoding": true, "connection": true}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), as a header name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// urlProblem describes what is wrong with an endpoint URL, or returns "". Every endpoint is
// https (the emulator is too). A query is allowed only where withQuery (webhooks often carry
// a key in it).
func urlProblem(raw string, withQuery bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%q is not a URL", raw)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Sprintf("must be an https:// URL, not %q", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%q has no host", raw)
	case u.User != nil:
		return "must not hold a user name or password"
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return "must not have a #fragment"
	case !withQuery && (u.RawQuery != "" || u.ForceQuery):
		return "must not have a ?query"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("port must be a number from 1 to 65535, not %q", p)
		}
	}
	return ""
}

// isGUID reports whether s is a GUID written 8-4-4-4-12 in hex digits (either case).
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// looksLikeGUID reports whether s was meant as a GUID rather than a domain: it has no dot.
func looksLikeGUID(s string) bool {
	return !strings.Contains(s, ".") && strings.Count(s, "-") >= 2
}

// guidProblem describes what is wrong with a GUID, or returns "".
func guidProblem(s string) string {
	switch {
	case isGUID(s) && strings.Trim(s, "0-") == "":
		return "is the nil GUID; give the real ID"
	case isGUID(s):
		return ""
	case isGUID(strings.Trim(s, "{}")):
		return fmt.Sprintf("%q must be written without braces", s)
	}
	return fmt.Sprintf("%q is not a GUID (8-4-4-4-12 hex digits, as the Azure portal shows it)", s)
}

// isDomain reports whether s is a DNS domain name of at least two labels.
func isDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// The top-level domain is never all digits ("10.0.0.1" is not a tenant).
	tld := labels[len(labels)-1]
	return strings.Trim(tld, "0123456789") != ""
}
