package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The audit log is a hash chain: every entry carries the hash of the entry before it
// (prevHash, "" for the first) and its own hash, SHA-256 over a canonical encoding of the
// entry that includes its sequence number and prevHash. Changing, removing or reordering an
// entry breaks the chain from that entry on, unless every later hash is recomputed; `certagent
// audit verify` finds the first break. The chain is tamper-evident, not tamper-proof: there
// is no secret key, so whoever can write the files can recompute every hash. Copies of the
// trail elsewhere (the JSON-lines files shipped to a log collector) are what make a rewrite
// visible.
//
// The canonical encoding (docs/contract.md, "Audit log") is, for each field in this order,
// the field's name, ":", the length of its value in bytes (decimal), ":", the value, and a
// newline, after the line "certagent-audit-chain-v1":
//
//	seq, prevHash, at, action, actor, outcome, rotationId, state, file, keyId,
//	then, only when the entry has a certificate: certificate.thumbprint, certificate.sha256,
//	certificate.subject, certificate.issuer, certificate.serialNumber,
//	certificate.notBefore, certificate.notAfter, certificate.keyAlgorithm,
//	certificate.keyBits,
//	then code, message,
//	then, only when the entry names an app: appId (added after the first release; entries
//	without it hash as they always did).
//
// Numbers are decimal, times RFC 3339 in UTC with as many fractional digits as needed (Go's
// time.RFC3339Nano), strings valid UTF-8 (each invalid byte replaced by U+FFFD, as the JSON
// of the store and of the files holds them). The hash is written as 64 lower-case hex
// digits.

// chainHeader starts every canonical encoding; a new encoding gets a new header.
const chainHeader = "certagent-audit-chain-v1\n"

// HashLen is the length of a hash in hex digits.
const HashLen = 2 * sha256.Size

// canonicalBody encodes rec's fields after seq and prevHash. rec must be sanitized.
func canonicalBody(rec *auditRecord) []byte {
	b := make([]byte, 0, 256+len(rec.Message))
	b = field(b, "at", formatTime(rec.At))
	b = field(b, "action", rec.Action)
	b = field(b, "actor", rec.Actor)
	b = field(b, "outcome", rec.Outcome)
	b = field(b, "rotationId", rec.RotationID)
	b = field(b, "state", rec.State)
	b = field(b, "file", rec.File)
	b = field(b, "keyId", rec.KeyID)
	if c := rec.Cert; c != nil {
		b = field(b, "certificate.thumbprint", c.Thumbprint)
		b = field(b, "certificate.sha256", c.SHA256)
		b = field(b, "certificate.subject", c.Subject)
		b = field(b, "certificate.issuer", c.Issuer)
		b = field(b, "certificate.serialNumber", c.SerialNumber)
		b = field(b, "certificate.notBefore", formatTime(c.NotBefore))
		b = field(b, "certificate.notAfter", formatTime(c.NotAfter))
		b = field(b, "certificate.keyAlgorithm", c.KeyAlgorithm)
		b = field(b, "certificate.keyBits", strconv.Itoa(c.KeyBits))
	}
	b = field(b, "code", rec.Code)
	b = field(b, "message", rec.Message)
	if rec.AppID != "" {
		b = field(b, "appId", rec.AppID)
	}
	return b
}

// chainHash is the hash of the entry with sequence number seq, the previous entry's hash
// prev, and the canonical body of its other fields.
func chainHash(seq uint64, prev string, body []byte) string {
	head := make([]byte, 0, len(chainHeader)+64+HashLen)
	head = append(head, chainHeader...)
	head = field(head, "seq", strconv.FormatUint(seq, 10))
	head = field(head, "prevHash", prev)
	h := sha256.New()
	h.Write(head)
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// hashOf computes the hash rec should carry, from its own seq and prevHash.
func hashOf(rec *auditRecord) string {
	return chainHash(rec.Seq, rec.PrevHash, canonicalBody(rec))
}

func field(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(len(value)), 10)
	b = append(b, ':')
	b = append(b, value...)
	return append(b, '\n')
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// sanitize makes rec exactly what its JSON holds once read back: times in UTC without a
// monotonic reading, strings valid UTF-8 with each invalid byte replaced by U+FFFD (as
// encoding/json does). Hashes are computed over the sanitized record, so that a copy read
// back from the store or from a file hashes the same.
func (rec *auditRecord) sanitize() {
	rec.At = rec.At.UTC().Round(0)
	for _, s := range []*string{&rec.Action, &rec.Actor, &rec.Outcome, &rec.RotationID, &rec.State, &rec.File, &rec.KeyID, &rec.Code, &rec.Message, &rec.AppID} {
		*s = validUTF8(*s)
	}
	if c := rec.Cert; c != nil {
		cc := *c
		for _, s := range []*string{&cc.Thumbprint, &cc.SHA256, &cc.Subject, &cc.Issuer, &cc.SerialNumber, &cc.KeyAlgorithm} {
			*s = validUTF8(*s)
		}
		cc.NotBefore, cc.NotAfter = cc.NotBefore.UTC().Round(0), cc.NotAfter.UTC().Round(0)
		rec.Cert = &cc
	}
}

// validUTF8 replaces each byte of s that is not part of valid UTF-8 with U+FFFD, as
// encoding/json does when it writes a string.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s { // an invalid byte comes out as one utf8.RuneError
		b.WriteRune(r)
	}
	return b.String()
}
