package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent"
	"github.com/aucloud/certagent/agent/certs"
	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/agent/credential"
	"github.com/aucloud/certagent/agent/graph"
	"github.com/aucloud/certagent/agent/rotation"
	"github.com/aucloud/certagent/agent/securefile"
	"github.com/aucloud/certagent/agent/store"
	"github.com/aucloud/certagent/api"
	"github.com/aucloud/certagent/api/client"
)

// maxClockSkew is how far the local clock may be from Entra's: Entra refuses a client
// assertion outside a 5-minute window (docs/graph.md, AADSTS700024).
const maxClockSkew = 5 * time.Minute

// doctorTimeout bounds each network check.
const doctorTimeout = 30 * time.Second

func runDoctor(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlags(env, "doctor", "doctor [-c FILE] [--json]")
	configFile := fs.String("c", "", "config file of the agent (default "+config.DefaultPath()+")")
	asJSON := fs.Bool("json", false, "print one JSON object per check: {check, status, message, fix}")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	d := &doctor{env: env}
	d.run(ctx, *configFile)
	return d.c.print(env.stdout, *asJSON, "doctor")
}

// doctor runs one check after the other, each adding its line; a check whose prerequisite
// failed says so instead of failing again.
type doctor struct {
	env *cmdEnv
	cfg *config.Config
	c   checks
}

func (d *doctor) run(ctx context.Context, configFile string) {
	path := configFile
	if path == "" {
		path = config.DefaultPath()
	}
	cfg, err := loadConfig(path)
	if err == nil {
		_, err = policyOf(cfg)
	}
	if err != nil {
		d.c.fail("config", err.Error(), fmt.Sprintf("fix the file: `certagent config check -c %s` lists every problem with its line", path))
		return
	}
	d.cfg = cfg
	d.c.ok("config", "%s parses and validates", cfg.File)
	d.stateFolder()
	d.dropFolder()
	d.tokenFile()
	cred := d.credential()
	d.store(ctx)
	d.clock(ctx)
	d.graph(ctx, cred)
}

func (d *doctor) stateFolder() {
	dir := d.cfg.StateDir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.c.fail("state folder", dir+" does not exist",
			fmt.Sprintf("the agent creates it when it first starts; if it ran before, its state is elsewhere: check state_dir in %s", d.cfg.File))
		return
	case err != nil:
		d.c.fail("state folder", err.Error(), "run as administrator/root")
		return
	case !fi.IsDir():
		d.c.fail("state folder", dir+" is not a folder", fmt.Sprintf("move the file away, or set state_dir in %s to a folder", d.cfg.File))
		return
	}
	if runtime.GOOS != "windows" && within(d.cfg.DropFolder, dir) {
		// The agent opens a state folder that holds the drop folder to traversal (0711),
		// never to listing or writing.
		if perm := fi.Mode().Perm(); perm&0o066 != 0 {
			d.c.fail("state folder", fmt.Sprintf("%s can be listed or written by other users (mode %04o)", dir, perm),
				fmt.Sprintf("chmod 711 %s (the agent also repairs it when it starts)", dir))
			return
		}
	} else if err := securefile.Check(dir); err != nil {
		d.c.fail("state folder", err.Error(), privateFix(dir, true))
		return
	}
	d.c.ok("state folder", "%s exists and is private", dir)
}

func (d *doctor) dropFolder() {
	dir := d.cfg.DropFolder
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.c.fail("drop folder", dir+" does not exist, so nobody can drop a certificate into it",
			fmt.Sprintf("create it (the agent makes it when it starts, not while it runs), or set drop_folder in %s to the folder the provider uses", d.cfg.File))
		return
	case err != nil:
		d.c.fail("drop folder", err.Error(), "give the agent's account access to it, or fix drop_folder in "+d.cfg.File)
		return
	case !fi.IsDir():
		d.c.fail("drop folder", dir+" is not a folder", fmt.Sprintf("move the file away (the agent needs a folder there), or fix drop_folder in %s", d.cfg.File))
		return
	}
	for _, sub := range []string{"", "processed", "rejected"} {
		p := filepath.Join(dir, sub)
		if sub != "" {
			sfi, err := os.Stat(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue // made when the first file is filed
			}
			if err == nil && !sfi.IsDir() {
				d.c.fail("drop folder", p+" is not a folder, so files cannot be filed into it (archive_unwritable)", "move the file away; the agent makes the folder")
				return
			}
		}
		if err := probeWrite(p); err != nil {
			d.c.fail("drop folder", fmt.Sprintf("files cannot be created in %s: %v", p, err),
				"give the agent's account (the service's) write access to it: it reads, renames and files every certificate there")
			return
		}
	}
	d.c.ok("drop folder", "%s exists and the agent can file into it", dir)
}

// probeWrite creates and removes a file in dir. Its name starts with "." and ends in .tmp,
// which the drop folder leaves alone.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".certagent-doctor-*.tmp")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func (d *doctor) tokenFile() {
	p := d.cfg.API.TokenFile
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.c.warn("token file", p+" does not exist yet", "nothing to do before the first start: the agent creates it when it starts")
		return
	case err != nil:
		d.c.fail("token file", err.Error(), "run as administrator/root")
		return
	case fi.IsDir():
		d.c.fail("token file", p+" is a folder", "remove it: the agent creates the token file when it starts")
		return
	}
	if err := securefile.Check(p); err != nil {
		d.c.fail("token file", err.Error(), privateFix(p, false)+"; anyone who read it can use the agent's API: delete it and restart the agent for a new token")
		return
	}
	tok, err := client.ReadTokenFile(p)
	if err != nil {
		d.c.fail("token file", err.Error(), "delete it and restart the agent: it makes a new one")
		return
	}
	if len(tok) < api.MinTokenLen || strings.ContainsAny(string(tok), " \t\r\n") {
		d.c.fail("token file", fmt.Sprintf("%s does not hold a token (%d bytes)", p, len(tok)), "delete it and restart the agent: it makes a new one")
		return
	}
	d.c.ok("token file", "%s is private and holds a token", p)
}

// credential checks the agent's own key and certificate and returns the credential (nil
// when it cannot be loaded).
func (d *doctor) credential() *credential.Credential {
	files := agent.CredentialFiles(d.cfg)
	initFix := fmt.Sprintf("run `certagent credential init -c %s` and upload the certificate it prints to the agent's app registration (%s) in the Azure portal", d.cfg.File, d.cfg.Auth.ClientID)
	if _, err := os.Stat(files.Key); err == nil {
		if err := securefile.Check(files.Key); err != nil {
			d.c.fail("credential", err.Error(), privateFix(files.Key, false)+"; if others may have read it, renew the credential: `certagent credential rotate`")
			return nil
		}
	}
	c, err := credential.Load(files)
	if err != nil {
		d.c.fail("credential", err.Error(), initFix)
		return nil
	}
	now := d.env.clock()
	f := c.Facts()
	left := c.Cert.NotAfter.Sub(now)
	renew := d.cfg.Auth.RenewBefore.Duration()
	switch {
	case left <= 0:
		d.c.fail("credential", fmt.Sprintf("the agent's certificate %s expired on %s: the agent cannot sign in", f.Thumbprint, c.Cert.NotAfter.UTC().Format(time.DateOnly)),
			fmt.Sprintf("move %s and %s aside, then %s, and restart the agent", files.Cert, files.Key, strings.TrimPrefix(initFix, "run ")))
	case left < renew:
		d.c.warn("credential", fmt.Sprintf("the agent's certificate %s expires on %s (%d days), within auth.renew_before (%s)", f.Thumbprint, c.Cert.NotAfter.UTC().Format(time.DateOnly), certs.DaysBetween(now, c.Cert.NotAfter), d.cfg.Auth.RenewBefore),
			"nothing to do while the agent runs and signs in: it renews it; if `certagent status` shows agent_credential_expiring, run `certagent credential rotate`")
	default:
		d.c.ok("credential", "certificate %s valid until %s (%d days); the agent renews it %s before", f.Thumbprint, c.Cert.NotAfter.UTC().Format(time.DateOnly), certs.DaysBetween(now, c.Cert.NotAfter), d.cfg.Auth.RenewBefore)
	}
	return c
}

func (d *doctor) store(ctx context.Context) {
	path := agent.StorePath(d.cfg)
	rebuild := fmt.Sprintf("`certagent store check -c %s` tells more; `certagent store rebuild -c %s` moves it aside and rebuilds the state from the audit trail and the app", d.cfg.File, d.cfg.File)
	s, err := store.OpenReadOnly(path, store.LockTimeout(checkLockTimeout))
	switch {
	case err == nil:
		defer s.Close()
	case errors.Is(err, store.ErrInUse):
		d.runningAgent(ctx, path)
		return
	case errors.Is(err, fs.ErrNotExist):
		if _, merr := store.ReadMarker(path); merr == nil || hasAuditFiles(store.AuditDirOf(path)) {
			d.c.fail("store", path+" is missing, but this state folder had a store", "restore it from a backup, or run "+rebuild[strings.Index(rebuild, "`certagent store rebuild"):])
			return
		}
		d.c.warn("store", path+" does not exist yet", "nothing to do before the first start: the agent creates it")
		return
	default:
		d.c.fail("store", err.Error(), rebuild)
		return
	}
	if m, err := store.ReadMarker(path); err == nil && m.StoreID != s.ID() {
		d.c.fail("store", fmt.Sprintf("%s is not the store this state folder had (id %s, marker %s)", path, s.ID(), m.StoreID), rebuild)
		return
	}
	rs, err := s.List(ctx, rotation.Filter{})
	if err != nil {
		d.c.fail("store", err.Error(), rebuild)
		return
	}
	res, err := s.VerifyAudit(ctx)
	if err != nil {
		d.c.fail("store", err.Error(), rebuild)
		return
	}
	if res.Break != nil {
		d.c.fail("store", "the store's audit chain is broken: "+res.Break.String(), "`certagent audit verify` compares the store with the JSON-lines files; keep both for investigation")
		return
	}
	d.c.ok("store", "%s opens (the agent is not running): schema %d, %s, %s, audit chain intact", path, s.Schema(), countByState(rs), plural(res.Entries, "audit entry"))
}

// runningAgent asks the agent that holds the store: its /readyz and its status.
func (d *doctor) runningAgent(ctx context.Context, path string) {
	held := fmt.Sprintf("the agent runs and holds %s, so the store was not opened; asked the agent on %s instead", path, d.cfg.API.Listen)
	c, err := apiClient(d.cfg)
	if err != nil {
		d.c.fail("store", held+": "+err.Error(), "run as administrator/root so the token file can be read")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	if _, err := c.Ready(ctx); err != nil {
		var ue *client.UnreachableError
		if errors.As(err, &ue) {
			d.c.fail("store", fmt.Sprintf("%s is held by a process that does not answer on %s: %v", path, d.cfg.API.Listen, ue.Err),
				"another certagent with this state folder, or one with another api.listen, may be running: stop it")
			return
		}
		d.c.fail("store", held+": it is not ready: "+err.Error(), "`certagent status` shows its problems, each with what to do")
		return
	}
	st, err := c.Status(ctx)
	if err != nil {
		d.c.fail("store", held+": "+err.Error(), "`certagent status` shows more")
		return
	}
	var codes []string
	for _, p := range st.Problems {
		if p.Code == "store_error" {
			d.c.fail("store", held+": "+p.Message, "stop the agent, then `certagent store check`")
			return
		}
		codes = append(codes, p.Code)
	}
	msg := held + ": /readyz is ready"
	if len(codes) > 0 {
		msg += "; its status lists " + strings.Join(codes, ", ") + " (`certagent status`)"
	}
	d.c.ok("store", "%s", msg)
}

// clock compares the local clock with the Date header of the Entra sign-in endpoint's
// answer (its OpenID configuration, on the token endpoint's host).
func (d *doctor) clock(ctx context.Context) {
	u := d.cfg.AuthorityHost() + url.PathEscape(d.cfg.TenantID) + "/v2.0/.well-known/openid-configuration"
	roots, err := agent.RootCAs(d.cfg)
	if err != nil {
		d.c.warn("clock", "not compared: "+err.Error(), "fix cloud.ca_file in "+d.cfg.File)
		return
	}
	hc := &http.Client{Timeout: doctorTimeout, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		d.c.warn("clock", "not compared: "+err.Error(), "")
		return
	}
	before := d.env.clock()
	resp, err := hc.Do(req)
	after := d.env.clock()
	if err != nil {
		d.c.warn("clock", fmt.Sprintf("not compared: %s did not answer: %v", hostOf(u), err), "see the sign-in line: the network, the proxy (HTTPS_PROXY) or cloud.ca_file")
		return
	}
	resp.Body.Close()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		d.c.warn("clock", fmt.Sprintf("not compared: %s's answer has no usable Date header", hostOf(u)), "")
		return
	}
	local := before.Add(after.Sub(before) / 2)
	skew := local.Sub(date)
	abs := skew.Abs() - time.Second // the Date header has whole seconds
	if abs > maxClockSkew {
		dir := "ahead of"
		if skew < 0 {
			dir = "behind"
		}
		d.c.warn("clock", fmt.Sprintf("the local clock is %s %s %s's clock: Entra ID refuses sign-ins whose assertion is more than 5 minutes off (AADSTS700024)", humanDuration(skew.Abs()), dir, hostOf(u)),
			"set the clock right and keep it synchronised: Windows `w32tm /resync`; Linux `timedatectl set-ntp true` (or chrony)")
		return
	}
	d.c.ok("clock", "the local clock is within %s of %s's", max(abs, 0).Round(time.Second)+time.Second, hostOf(u))
}

// graph signs in as the agent to each tenant a target is in, reads each target's app, and
// checks that the agent owns it. With one target the checks are "sign-in", "target app" and
// "owner"; with several, each names its target (and sign-in its tenant, when there are
// several tenants).
func (d *doctor) graph(ctx context.Context, cred *credential.Credential) {
	targets := d.cfg.EffectiveTargets()
	tenants := map[string]bool{}
	for _, tc := range targets {
		tenants[strings.ToLower(tc.TenantID)] = true
	}
	named := func(check string, tc config.TargetConfig) string {
		if len(targets) == 1 {
			return check
		}
		return check + " (" + tc.Name + ")"
	}
	signInName := func(tenant string) string {
		if len(tenants) == 1 {
			return "sign-in"
		}
		return "sign-in (" + tenant + ")"
	}
	if cred == nil {
		for tenant := range tenants {
			d.c.warn(signInName(tenant), "not checked: the agent's credential cannot be used (see the credential line)", "")
		}
		for _, tc := range targets {
			d.c.warn(named("target app", tc), "not checked: the agent's credential cannot be used (see the credential line)", "")
			d.c.warn(named("owner", tc), "not checked: the agent's credential cannot be used (see the credential line)", "")
		}
		return
	}
	tctx, cancel := context.WithTimeout(ctx, 2*doctorTimeout)
	defer cancel()
	type session struct {
		gc  *graph.Client
		sp  string
		err error
	}
	sessions := map[string]*session{}
	signIn := func(tenant string) *session {
		key := strings.ToLower(tenant)
		if s, ok := sessions[key]; ok {
			return s
		}
		s := &session{}
		sessions[key] = s
		if s.gc, _, s.err = agent.GraphClientFor(d.cfg, tenant, nil); s.err != nil {
			d.c.fail(signInName(key), s.err.Error(), "")
			return s
		}
		if s.sp, s.err = s.gc.ServicePrincipalID(tctx); s.err != nil {
			d.c.fail(signInName(key), s.err.Error(), d.signInFix(tenant, s.err, cred))
			return s
		}
		d.c.ok(signInName(key), "signed in to tenant %s as app %s (service principal %s) with certificate %s", tenant, d.cfg.Auth.ClientID, s.sp, cred.Facts().Thumbprint)
		return s
	}
	for _, tc := range targets {
		s := signIn(tc.TenantID)
		if s.err != nil {
			d.c.warn(named("target app", tc), "not checked: the agent cannot sign in to tenant "+tc.TenantID, "")
			d.c.warn(named("owner", tc), "not checked: the agent cannot sign in to tenant "+tc.TenantID, "")
			continue
		}
		d.targetApp(tctx, s.gc, s.sp, tc, named)
	}
}

// targetApp reads one target's app and checks that the agent's service principal sp owns it.
func (d *doctor) targetApp(ctx context.Context, gc *graph.Client, sp string, tc config.TargetConfig, named func(string, config.TargetConfig) string) {
	app, err := gc.Get(ctx, tc.AppID)
	if err != nil {
		d.c.fail(named("target app", tc), err.Error(), d.graphFix(tc, err))
		d.c.warn(named("owner", tc), "not checked: the target app cannot be read", "")
		return
	}
	newest := ""
	var latest time.Time
	for _, k := range app.KeyCredentials {
		if k.EndDateTime.After(latest) {
			latest = k.EndDateTime
		}
	}
	if !latest.IsZero() {
		newest = ", the newest valid until " + latest.UTC().Format(time.DateOnly)
	}
	d.c.ok(named("target app", tc), "read %s (%s) through Graph: %s%s", app.DisplayName, app.AppID, plural(len(app.KeyCredentials), "certificate"), newest)

	owners, err := gc.Owners(ctx, app.ObjectID)
	if err != nil {
		d.c.fail(named("owner", tc), err.Error(), d.graphFix(tc, err))
		return
	}
	var ids []string
	for _, o := range owners {
		if strings.EqualFold(o.ID, sp) {
			d.c.ok(named("owner", tc), "the agent's service principal %s owns %s", sp, app.DisplayName)
			return
		}
		ids = append(ids, o.ID)
	}
	list := "it has no owners"
	if len(ids) > 0 {
		list = "its owners are " + strings.Join(ids, ", ")
	}
	d.c.fail(named("owner", tc), fmt.Sprintf("the agent's service principal %s (app %s) is not an owner of %s (%s): %s; with Application.ReadWrite.OwnedBy the agent cannot add a certificate to it", sp, d.cfg.Auth.ClientID, app.DisplayName, app.AppID, list),
		fmt.Sprintf("add it: Azure portal > App registrations > %s > Owners > Add owners, and choose the agent's app (%s); or `az ad app owner add --id %s --owner-object-id %s`", app.DisplayName, d.cfg.Auth.ClientID, app.AppID, sp))
}

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)

// signInFix says what to do about a failed sign-in, by Entra's AADSTS code.
func (d *doctor) signInFix(tenant string, err error, cred *credential.Credential) string {
	code := 0
	var ge *graph.Error
	if errors.As(err, &ge) {
		code = ge.AADSTS
	}
	if code == 0 {
		if m := aadstsRE.FindStringSubmatch(err.Error()); m != nil {
			code, _ = strconv.Atoi(m[1])
		}
	}
	cfgFile := d.cfg.File
	switch code {
	case 90002:
		return fmt.Sprintf("tenant %s is not a tenant Entra ID knows: set tenant_id in %s to the directory (tenant) ID from Microsoft Entra ID > Overview", tenant, cfgFile)
	case 700016:
		return fmt.Sprintf("auth.client_id %s is not an app registration in tenant %s, nor consented there: set auth.client_id in %s to the agent's app (client) ID; for a tenant other than the app's own, make the app multitenant (App registrations > the agent's app > Authentication > Supported account types: accounts in any organizational directory) and grant admin consent in that tenant", d.cfg.Auth.ClientID, tenant, cfgFile)
	case 7000229:
		return fmt.Sprintf("the agent's app %s has no service principal in tenant %s: an administrator of that tenant must grant it admin consent (%sadminconsent?client_id=%s as a Global Administrator there), with Application.ReadWrite.OwnedBy, and make it an owner of the target app", d.cfg.Auth.ClientID, tenant, adminConsentBase(d.cfg.AuthorityHost(), tenant), d.cfg.Auth.ClientID)
	case 700027:
		return fmt.Sprintf("the agent's certificate %s is not registered on its app %s (or expired there): upload %s in the Azure portal, App registrations > the agent's app > Certificates & secrets > Certificates > Upload certificate",
			cred.Facts().Thumbprint, d.cfg.Auth.ClientID, d.cfg.Auth.CertificateFile)
	case 700024:
		return "the clock is off: set it right (see the clock line)"
	}
	if ge != nil && ge.Reason().Code == certs.GraphUnavailable {
		return fmt.Sprintf("check that this machine reaches %s: the network, the proxy (HTTPS_PROXY) and the firewall", d.cfg.AuthorityHost())
	}
	if strings.Contains(err.Error(), "TLS certificate is not trusted") {
		return "a TLS-inspecting proxy? put its CA certificate in cloud.ca_file in " + cfgFile
	}
	return "see `certagent credential show`, and the Troubleshooting table in the README"
}

// adminConsentBase is the authority's URL for tenant, ending in "/": where the admin consent
// endpoint is.
func adminConsentBase(authority, tenant string) string {
	return strings.TrimSuffix(authority, "/") + "/" + url.PathEscape(tenant) + "/"
}

// graphFix says what to do about a failed Graph call on tc's app, by its reason code.
func (d *doctor) graphFix(tc config.TargetConfig, err error) string {
	switch rotation.ErrorReason(err).Code {
	case certs.GraphDenied:
		return fmt.Sprintf("grant the agent's app (%s) the Microsoft Graph application permission Application.ReadWrite.OwnedBy with admin consent, and make it an owner of the target app", d.cfg.Auth.ClientID)
	case certs.AppNotFound:
		key := "target.app_id"
		if len(d.cfg.Targets) > 0 {
			key = "the app_id of target " + tc.Name
		}
		return fmt.Sprintf("%s %s is not an app registration in tenant %s: fix it in %s", key, tc.AppID, tc.TenantID, d.cfg.File)
	case certs.GraphUnavailable:
		return fmt.Sprintf("check that this machine reaches %s (network, proxy, firewall); Graph may also be throttling or down: try again later", d.cfg.GraphURL())
	}
	return "see the Troubleshooting table in the README"
}

// privateFix says how to make path private again.
func privateFix(path string, dir bool) string {
	if runtime.GOOS == "windows" {
		return fmt.Sprintf("restart the agent: it restores %s's access list (administrators, SYSTEM and the service only)", path)
	}
	mode := "600"
	if dir {
		mode = "700"
	}
	return fmt.Sprintf("chmod %s %s (the agent also repairs it when it starts)", mode, path)
}

// humanDuration writes d in days from two days up, else to the second.
func humanDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Second).String()
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Host
	}
	return u
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
