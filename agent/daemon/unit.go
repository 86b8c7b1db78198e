package daemon

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// RenderUnit returns the systemd unit for s: what kardianos/service's Install writes (it is
// its SystemdScript, systemd_linux.go), what the .deb ships (PackagedUnit) and what
// `certagent service unit` prints. It is ours rather than kardianos's default template:
// Restart=on-failure with RestartSec=5 (not minutes), Type=notify (the agent says READY=1
// once its API listens, standby included), no restart on a config that cannot be used
// (RestartPreventExitStatus=78), and hardening: the agent only needs to read its config,
// write its state and drop folders, and reach Entra ID and Graph over HTTPS.
//
// The paths go through systemd's quoting (spaces, specifiers), and a missing ReadWritePaths
// folder does not keep the service from starting ("-"): the agent then reports the folder as
// a status problem.
func RenderUnit(s Spec) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# %s: the %s service (certagent run --service).", UnitName, Name)
	w("# `certagent install` and the certagent package write this file: keep local changes")
	w("# in a drop-in (systemctl edit certagent), which both leave alone.")
	w("[Unit]")
	w("Description=%s", DisplayName)
	w("Documentation=https://github.com/aucloud/certagent")
	w("Wants=network-online.target")
	w("After=network-online.target")
	w("")
	w("[Service]")
	w("Type=notify")
	w("NotifyAccess=main")
	cmd := []string{systemdQuote(s.Executable)}
	for _, a := range Args(s.ConfigFile) {
		cmd = append(cmd, systemdQuote(a))
	}
	w("ExecStart=%s", strings.Join(cmd, " "))
	if s.User != "" && s.User != "root" {
		w("User=%s", s.User)
		w("Group=%s", s.User)
	}
	w("Restart=on-failure")
	w("RestartSec=5")
	w("RestartPreventExitStatus=%d", ExitConfig)
	w("TimeoutStartSec=90")
	w("TimeoutStopSec=%d", int(StopTimeout.Seconds())+10)
	w("SyslogIdentifier=certagent")
	w("UMask=0077")
	w("NoNewPrivileges=yes")
	w("CapabilityBoundingSet=")
	w("ProtectSystem=strict")
	w("ProtectHome=yes")
	w("PrivateTmp=yes")
	w("PrivateDevices=yes")
	w("ProtectKernelTunables=yes")
	w("ProtectKernelModules=yes")
	w("ProtectKernelLogs=yes")
	w("ProtectControlGroups=yes")
	w("ProtectClock=yes")
	w("ProtectHostname=yes")
	w("RestrictSUIDSGID=yes")
	w("RestrictRealtime=yes")
	w("RestrictNamespaces=yes")
	w("LockPersonality=yes")
	w("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6")
	w("SystemCallArchitectures=native")
	if paths := writablePaths(s.ReadWritePaths); len(paths) > 0 {
		q := make([]string, len(paths))
		for i, p := range paths {
			q[i] = systemdQuote("-" + p)
		}
		w("ReadWritePaths=%s", strings.Join(q, " "))
	}
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	return b.String()
}

// writablePaths cleans the paths (Linux paths, whatever the OS that renders the unit) and
// drops those inside another one.
func writablePaths(paths []string) []string {
	var clean []string
	for _, p := range paths {
		if p != "" {
			clean = append(clean, path.Clean(p))
		}
	}
	slices.Sort(clean)
	clean = slices.Compact(clean)
	var out []string
	for _, p := range clean {
		inside := false
		for _, q := range out {
			if q == "/" || strings.HasPrefix(p, q+"/") {
				inside = true
			}
		}
		if !inside {
			out = append(out, p)
		}
	}
	return out
}

// systemdQuote quotes one word of a unit's command line or path list: double quotes when it
// holds a space or a quote, with backslash escapes; "%" (specifiers) and "$" (variables)
// doubled, so that the word reaches the program exactly as given.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// parseExecStart splits an ExecStart= value into words, undoing systemdQuote.
func parseExecStart(v string) []string {
	var words []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v):
			i++
			switch v[i] {
			case 't':
				cur.WriteByte('\t')
			default:
				cur.WriteByte(v[i])
			}
			have = true
		case c == '"':
			inQuote, have = !inQuote, true
		case (c == ' ' || c == '\t') && !inQuote:
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		case (c == '%' || c == '$') && i+1 < len(v) && v[i+1] == c:
			cur.WriteByte(c)
			i++
			have = true
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		words = append(words, cur.String())
	}
	return words
}
