package emulator

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// jwtToken is a parsed, not yet verified, compact JWS.
type jwtToken struct {
	header map[string]any
	claims map[string]any
	// signingInput is "header.payload" exactly as received.
	signingInput string
	signature    []byte
	// padded reports whether any segment carried '=' padding.
	padded bool
}

var errMalformedJWT = errors.New("malformed JWT")

// parseJWT splits and decodes a compact JWS. It accepts base64url with or without padding
// (recording which) and decodes numbers as json.Number so that float claims survive.
func parseJWT(s string) (*jwtToken, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errMalformedJWT
	}
	t := &jwtToken{signingInput: parts[0] + "." + parts[1]}
	var raw [3][]byte
	for i, p := range parts {
		if p == "" && i != 2 {
			return nil, errMalformedJWT
		}
		if strings.Contains(p, "=") {
			t.padded = true
		}
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p, "="))
		if err != nil {
			return nil, errMalformedJWT
		}
		raw[i] = b
	}
	var err error
	if t.header, err = decodeJSONObject(raw[0]); err != nil {
		return nil, errMalformedJWT
	}
	if t.claims, err = decodeJSONObject(raw[1]); err != nil {
		return nil, errMalformedJWT
	}
	t.signature = raw[2]
	return t, nil
}

func decodeJSONObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil || dec.More() {
		return nil, errMalformedJWT
	}
	return m, nil
}

// headerString returns a string header parameter, or "".
func (t *jwtToken) headerString(name string) string {
	s, _ := t.header[name].(string)
	return s
}

// claimString returns a string claim, or "".
func (t *jwtToken) claimString(name string) string {
	s, _ := t.claims[name].(string)
	return s
}

// claimTime returns a NumericDate claim (integer or float seconds since the epoch).
func (t *jwtToken) claimTime(name string) (time.Time, bool) {
	n, ok := t.claims[name].(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// audiences returns the aud claim as a list (a string or an array of strings).
func (t *jwtToken) audiences() []string {
	switch v := t.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// verifyRSA checks the signature with pub for RS256 (PKCS#1 v1.5) or PS256 (PSS, salt length
// auto-detected as Entra does).
func (t *jwtToken) verifyRSA(alg string, pub *rsa.PublicKey) error {
	sum := sha256.Sum256([]byte(t.signingInput))
	switch alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], t.signature)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, sum[:], t.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return fmt.Errorf("unsupported alg %q", alg)
}

// signRS256 makes a compact JWS with an RS256 signature and no padding.
func signRS256(key *rsa.PrivateKey, header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// decodeThumbprintHeader decodes an x5t or x5t#S256 header value. Entra accepts base64url
// (as the JWS spec says) and, because MSAL-Go sends it so, standard base64 with padding.
func decodeThumbprintHeader(s string) ([]byte, bool) {
	if s == "" {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// newGUID returns a random (version 4) GUID in lower case.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// parseGUID returns s in canonical lower-case form when it is a GUID (with or without
// braces).
func parseGUID(s string) (string, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", false
	}
	for i, r := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return "", false
		}
	}
	return strings.ToLower(s), true
}

// decodeBase64Loose decodes standard base64 that may hold line breaks and other white space
// (azure-cli sends the PEM body as is) and may lack padding.
func decodeBase64Loose(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}
