package notify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// testSecret is a Standard Webhooks secret: 32 bytes of key.
var testKey = bytes.Repeat([]byte{0xA5, 0x5A, 0x01, 0xFE}, 8)
var testSecret = SecretPrefix + base64.StdEncoding.EncodeToString(testKey)

func TestParseSecrets(t *testing.T) {
	raw := "a raw secret of at least 24 bytes"
	tests := []struct {
		name    string
		in      string
		keys    [][]byte
		wantErr string
	}{
		{"whsec", testSecret + "\n", [][]byte{testKey}, ""},
		{"whsec without padding", SecretPrefix + base64.RawStdEncoding.EncodeToString(testKey[:25]), [][]byte{testKey[:25]}, ""},
		{"raw", raw, [][]byte{[]byte(raw)}, ""},
		{"CRLF, BOM, comments, blank lines, two secrets", "\ufeff# the provider's secret\r\n\r\n" + testSecret + "\r\n  " + raw + "  \r\n", [][]byte{testKey, []byte(raw)}, ""},
		{"empty", "\n# nothing\n", nil, "no secret"},
		{"short raw", "short", nil, "shorter than 24"},
		{"short whsec", SecretPrefix + base64.StdEncoding.EncodeToString(testKey[:16]), nil, "16 bytes"},
		{"long whsec", SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat(testKey, 3)), nil, "96 bytes"},
		{"bad base64", SecretPrefix + "!!!not base64!!!not base64!!!not base64", nil, "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSecrets([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSecrets(%q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecrets(%q) = %v", tt.in, err)
			}
			if len(s.keys) != len(tt.keys) {
				t.Fatalf("ParseSecrets(%q) = %d keys, want %d", tt.in, len(s.keys), len(tt.keys))
			}
			for i := range s.keys {
				if !bytes.Equal(s.keys[i], tt.keys[i]) {
					t.Errorf("key %d = %x, want %x", i, s.keys[i], tt.keys[i])
				}
			}
		})
	}
}

// TestSignKnownVector checks Sign against a signature computed by hand from the spec's
// formula, so that a change to the signed content cannot pass unnoticed.
func TestSignKnownVector(t *testing.T) {
	s, err := ParseSecrets([]byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
	if err != nil {
		t.Fatal(err)
	}
	// The Standard Webhooks libraries' shared test vector (libraries/*/ tests).
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestSignerRedacts(t *testing.T) {
	s, err := ParseSecrets([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", s)
	fmt.Fprintf(&buf, " %v %s %+v", s, s, s)
	b64 := strings.TrimPrefix(testSecret, SecretPrefix)
	if strings.Contains(buf.String(), b64) || strings.Contains(buf.String(), string(testKey)) || strings.Contains(buf.String(), "a55a01fe") {
		t.Errorf("the secret leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "1 webhook secret(s), redacted") {
		t.Errorf("log = %s, want the redacted form", buf.String())
	}
}

// TestSignOfficialLibrary verifies signatures with the Standard Webhooks project's own Go
// library, as a provider's receiver would: the headers as set on a request, the secret in
// its whsec_ form, a tampered body, id or timestamp, and two secrets during a change.
func TestSignOfficialLibrary(t *testing.T) {
	s, err := ParseSecrets([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"certificate.applied","timestamp":"2026-11-25T19:30:00Z","data":{"rotationId":"r1"}}`)
	now := time.Now()
	h := http.Header{}
	setAttemptHeaders(h, s, "msg_0123", now, body)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("official library: Verify = %v, want nil (headers %v)", err, h)
	}
	if h.Get("webhook-timestamp") != strconv.FormatInt(now.Unix(), 10) {
		t.Errorf("webhook-timestamp = %q, want %d", h.Get("webhook-timestamp"), now.Unix())
	}
	tampered := bytes.Replace(body, []byte("r1"), []byte("r2"), 1)
	if err := wh.Verify(tampered, h); err == nil {
		t.Error("official library: a tampered body verified")
	}
	for name, mutate := range map[string]func(http.Header){
		"id":        func(h http.Header) { h.Set("webhook-id", "msg_0124") },
		"timestamp": func(h http.Header) { h.Set("webhook-timestamp", strconv.FormatInt(now.Unix()-1, 10)) },
	} {
		h2 := h.Clone()
		mutate(h2)
		if err := wh.VerifyIgnoringTimestamp(body, h2); err == nil {
			t.Errorf("official library: a changed %s verified", name)
		}
	}
	// A change of secret: the file holds the new and the old; receivers with either accept.
	other := SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	both, err := ParseSecrets([]byte(other + "\n" + testSecret + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	setAttemptHeaders(h, both, "msg_0125", now, body)
	if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
		t.Errorf("webhook-signature with two secrets = %q, want two signatures", h.Get("webhook-signature"))
	}
	for _, sec := range []string{other, testSecret} {
		wh, _ := standardwebhooks.NewWebhook(sec)
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("official library with one of two secrets: Verify = %v", err)
		}
	}
	// A raw secret is its bytes as the key: the library's NewWebhookRaw.
	raw := "a raw secret of at least 24 bytes"
	rs, _ := ParseSecrets([]byte(raw))
	h = http.Header{}
	setAttemptHeaders(h, rs, "msg_0126", now, body)
	whr, _ := standardwebhooks.NewWebhookRaw([]byte(raw))
	if err := whr.Verify(body, h); err != nil {
		t.Errorf("official library, raw secret: Verify = %v", err)
	}
	if !rs.Verify("msg_0126", now.Unix(), body, h.Get("webhook-signature")) || rs.Verify("msg_0126", now.Unix(), tampered, h.Get("webhook-signature")) {
		t.Error("Signer.Verify disagrees with the official library")
	}
}

func TestSignUnsigned(t *testing.T) {
	h := http.Header{}
	setAttemptHeaders(h, nil, "msg_1", time.Unix(1700000000, 0), []byte("{}"))
	if h.Get("webhook-signature") != "" || h.Get("webhook-id") != "msg_1" || h.Get("webhook-timestamp") != "1700000000" {
		t.Errorf("unsigned headers = %v; want id and timestamp, no signature", h)
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	if _, err := ReadSecretFile(filepath.Join(dir, "absent"), log); err == nil || !strings.Contains(err.Error(), "notify.secret_file") {
		t.Errorf("ReadSecretFile(absent) = %v, want an error naming notify.secret_file", err)
	}
	if _, err := ReadSecretFile(dir, log); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadSecretFile(dir) = %v, want not a regular file", err)
	}
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(p, log); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadSecretFile(short secret) = %v, want an error naming the file", err)
	}
	if err := os.WriteFile(p, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSecretFile(p, log)
	if err != nil || s.Keys() != 1 {
		t.Fatalf("ReadSecretFile = %v, %v; want one key", s, err)
	}
}
