package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aucloud/certagent/api/client"
	"github.com/aucloud/certagent/internal/devenv"
	"github.com/aucloud/certagent/internal/syncbuf"
)

// TestDevCommand runs `certagent dev` as a newcomer would, reads dev.json, calls every API
// route through the running agent, drops the sample certificate, asks `certagent status`,
// and stops it with an interrupt.
func TestDevCommand(t *testing.T) {
	bin := Binary(t)
	d := startDev(t, 60*time.Second)
	info, c, cmd, out, errb, exited := d.info, d.client, d.cmd, &d.out, &d.errb, d.exited
	for _, v := range []string{info.APIURL, info.TokenFile, info.DropFolder, info.EmulatorURL, info.EmulatorCAFile, info.TenantID, info.TargetAppID, info.ConfigFile} {
		if v == "" {
			t.Fatalf("dev.json lacks a field: %+v", info)
		}
	}
	ctx := context.Background()
	waitUntil(t, "ready", func() bool { _, err := c.Ready(ctx); return err == nil })

	// The newcomer's step: copy the sample certificate into the drop folder.
	sample, err := os.ReadFile(info.SampleCertificate)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(info.DropFolder, filepath.Base(info.SampleCertificate)), sample, 0o644); err != nil {
		t.Fatal(err)
	}
	var thumb string
	waitUntil(t, "the sample applied (after the 2 s settle window)", func() bool {
		rs, err := c.Rotations(ctx, "applied")
		if err == nil && len(rs) == 1 {
			thumb = rs[0].Certificate.Thumbprint
			return true
		}
		return false
	})

	// Every route answers through the running agent.
	if s, err := c.Status(ctx); err != nil || s.Rotations["applied"] != 1 || s.Target.AppID != info.TargetAppID {
		t.Errorf("status = %+v, %v", s, err)
	}
	if l, err := c.Certificates(ctx, true); err != nil || len(l.Items) != 2 {
		t.Errorf("certificates?refresh=true = %+v, %v; want 2 items", l, err)
	}
	if _, err := c.Scan(ctx); err != nil {
		t.Errorf("scan: %v", err)
	}
	if cr, err := c.Credential(ctx); err != nil || cr.Method != "certificate" {
		t.Errorf("credential = %+v, %v", cr, err)
	}
	if a, err := c.Audit(ctx, 0, 10); err != nil || len(a.Items) == 0 {
		t.Errorf("audit = %+v, %v", a, err)
	}
	if doc, err := c.OpenAPI(ctx); err != nil || !bytes.Contains(doc, []byte(`"openapi"`)) {
		t.Errorf("openapi: %v", err)
	}
	if m, err := c.Metrics(ctx); err != nil || !bytes.Contains(m, []byte("certagent_rotations")) {
		t.Errorf("metrics: %v", err)
	}
	if _, err := c.Live(ctx); err != nil {
		t.Errorf("livez: %v", err)
	}
	// Without the token: 401; from a browser page: 403.
	resp, err := http.Get(info.APIURL + "/api/v1/status")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status without a token: %d, want 401", resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, info.APIURL+"/livez", nil)
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("request with Origin: %d, want 403", resp.StatusCode)
		}
	}
	// The emulator shows the new certificate beside the old one.
	app, err := readEmulatorApp(info)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(app, thumb) || strings.Count(app, `"thumbprint"`) < 2 {
		t.Errorf("emulator state does not show both certificates")
	}

	// `certagent status` tells a newcomer what needs attention.
	st, err := exec.Command(bin, "status", "-c", info.ConfigFile).CombinedOutput()
	if err != nil || !strings.Contains(string(st), "awaiting_confirmation") || !strings.Contains(string(st), thumb) {
		t.Errorf("certagent status: %v\n%s", err, st)
	}

	if runtime.GOOS != "windows" {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("certagent dev exited with %v after an interrupt\n%s", err, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("certagent dev did not stop within 30s of an interrupt")
		}
	}
	if !strings.Contains(out.String(), "drop folder") {
		t.Errorf("the banner does not say where to drop a file:\n%s", out.String())
	}
}

// devRun is a running `certagent dev`, with its dev.json and an API client for it.
type devRun struct {
	cmd       *exec.Cmd
	out, errb syncbuf.Buffer // read while the process writes
	exited    chan error
	info      devenv.Info
	client    *client.Client
}

// startDev starts `certagent dev` in a temporary folder with the extra arguments, and waits
// up to wait for its dev.json. It is killed when the test ends.
func startDev(t *testing.T, wait time.Duration, args ...string) *devRun {
	t.Helper()
	dir := t.TempDir()
	d := &devRun{exited: make(chan error, 1)}
	d.cmd = exec.Command(Binary(t), append([]string{"dev", "--dir", dir, "--listen", "127.0.0.1:0"}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = &d.out, &d.errb
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() { d.cmd.Process.Kill() })
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "dev.json"))
		if err == nil && json.Unmarshal(b, &d.info) == nil && d.info.APIURL != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dev.json after %s\nstdout:\n%s\nstderr:\n%s", wait, d.out.String(), d.errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := client.ReadTokenFile(d.info.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if d.client, err = client.New(d.info.APIURL, tok); err != nil {
		t.Fatal(err)
	}
	return d
}

// readEmulatorApp reads GET /_emulator/state over HTTPS, trusting the emulator's CA file
// as a newcomer's curl --cacert would.
func readEmulatorApp(info devenv.Info) (string, error) {
	pool, err := caPool(info.EmulatorCAFile)
	if err != nil {
		return "", err
	}
	hc := httpsClient(pool)
	resp, err := hc.Get(info.EmulatorURL + "/_emulator/state")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func caPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool, nil
}

func httpsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
