package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aucloud/certagent/agent/securefile"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com/, spec 1.0.0).
const (
	// HeaderID is the event's id: the same on every attempt, so the receiver can drop
	// duplicates.
	HeaderID = "webhook-id"
	// HeaderTimestamp is when this attempt was made, in Unix seconds (not when the event
	// happened: that is the body's timestamp).
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature is one "v1,<base64 HMAC-SHA256>" per secret, space-separated.
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a secret in the Standard Webhooks form: "whsec_" then the key in base64.
const SecretPrefix = "whsec_"

// Limits of a secret's key, in bytes. The spec asks for at least 24 random bytes and at
// most 64 (512 bits) for "whsec_" secrets; a raw secret gets the same floor and no ceiling.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// maxSecretFile bounds the secret file; a real one is a line or two.
const maxSecretFile = 64 << 10

// Signer signs deliveries with one or more secrets. It never prints its keys: its String and
// LogValue say only how many it holds. A nil *Signer signs nothing.
type Signer struct {
	keys [][]byte
}

// ParseSecrets reads the secrets of a secret file: one per line, blank lines and lines
// starting with "#" ignored, surrounding spaces trimmed. A line starting with "whsec_" is
// the Standard Webhooks form, and the key is the base64 after the prefix (24 to 64 bytes);
// any other line is used as it is, its UTF-8 bytes being the key (at least 24 bytes). Two
// lines are how the secret changes without a gap: every delivery is signed with each, and
// the receiver accepts a delivery when one signature matches.
func ParseSecrets(b []byte) (*Signer, error) {
	var s Signer
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(line, "\ufeff"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := parseSecret(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		s.keys = append(s.keys, key)
	}
	if len(s.keys) == 0 {
		return nil, errors.New("no secret in it (one per line; the Standard Webhooks form is whsec_ followed by base64)")
	}
	return &s, nil
}

func parseSecret(line string) ([]byte, error) {
	b64, ok := strings.CutPrefix(line, SecretPrefix)
	if !ok {
		if len(line) < MinSecretBytes {
			return nil, fmt.Errorf("the secret is %d bytes, shorter than %d; use a random one, e.g. whsec_ followed by `openssl rand -base64 32`", len(line), MinSecretBytes)
		}
		return []byte(line), nil
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Some generators leave out the padding.
		var err2 error
		if key, err2 = base64.RawStdEncoding.DecodeString(b64); err2 != nil {
			return nil, fmt.Errorf("the part after %s is not base64: %v", SecretPrefix, err)
		}
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("the key after %s is %d bytes; Standard Webhooks keys are %d to %d bytes", SecretPrefix, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// ReadSecretFile reads the secrets of path (see ParseSecrets). The file must be private like
// the API token (securefile); one whose permissions were loosened is repaired, and log says
// so. Errors name the file.
func ReadSecretFile(path string, log *slog.Logger) (*Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the webhook secret (notify.secret_file): %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading the webhook secret (notify.secret_file): %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("the webhook secret %s (notify.secret_file) is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading the webhook secret %s (notify.secret_file): %w", path, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("the webhook secret %s (notify.secret_file) is larger than 64 KiB", path)
	}
	if err := securefile.Check(path); err != nil {
		if rerr := securefile.Restrict(path); rerr != nil {
			return nil, fmt.Errorf("the webhook secret %s (notify.secret_file) is not private (%v) and could not be repaired: %w", path, err, rerr)
		}
		log.Warn("webhook secret file was readable by others; restricted it", "file", path, "was", err.Error())
	}
	s, err := ParseSecrets(b)
	if err != nil {
		return nil, fmt.Errorf("the webhook secret %s (notify.secret_file): %w", path, err)
	}
	return s, nil
}

// Sign returns the webhook-signature header for a delivery: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" for each secret, space-separated; "" for a nil Signer. timestamp is
// the webhook-timestamp header's value (Unix seconds).
func (s *Signer) Sign(id string, timestamp int64, body []byte) string {
	if s == nil {
		return ""
	}
	var out []string
	for _, k := range s.keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write(strconv.AppendInt(nil, timestamp, 10))
		m.Write([]byte{'.'})
		m.Write(body)
		out = append(out, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(out, " ")
}

// Verify reports whether header (a webhook-signature value) holds a v1 signature of
// id.timestamp.body by one of s's secrets, compared in constant time. It does not judge the
// timestamp's age; a receiver must (the spec suggests 5 minutes). The agent never receives
// webhooks: Verify is the reference for tests and for people reading how to check one.
func (s *Signer) Verify(id string, timestamp int64, body []byte, header string) bool {
	if s == nil {
		return false
	}
	want := strings.Split(s.Sign(id, timestamp, body), " ")
	for _, got := range strings.Fields(header) {
		for _, w := range want {
			if hmac.Equal([]byte(got), []byte(w)) {
				return true
			}
		}
	}
	return false
}

// Keys returns how many secrets s holds (0 for nil).
func (s *Signer) Keys() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// String says how many secrets s holds, never what they are.
func (s *Signer) String() string {
	return fmt.Sprintf("%d webhook secret(s), redacted", s.Keys())
}

// LogValue implements slog.LogValuer with String's redacted form.
func (s *Signer) LogValue() slog.Value { return slog.StringValue(s.String()) }

// setAttemptHeaders sets the Standard Webhooks headers of one attempt made at now.
func setAttemptHeaders(h http.Header, s *Signer, id string, now time.Time, body []byte) {
	ts := now.Unix()
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	if sig := s.Sign(id, ts, body); sig != "" {
		h.Set(HeaderSignature, sig)
	}
}
