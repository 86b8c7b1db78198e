package certs

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
	"time"
)

func TestThumbprintFromCustomKeyIdentifier(t *testing.T) {
	const hexThumb = "52ED9B5038A47B9E2E2190715CC238359D4F8F73"
	raw, _ := hex.DecodeString(hexThumb)
	// What a client gets when Graph sends the hex text and the SDK base64-decodes it.
	misread, _ := base64.StdEncoding.DecodeString(hexThumb)
	tests := []struct {
		name string
		cki  []byte
		want string
	}{
		{"raw 20 bytes", raw, hexThumb},
		{"hex text", []byte(hexThumb), hexThumb},
		{"lower-case hex text", []byte("52ed9b5038a47b9e2e2190715cc238359d4f8f73"), hexThumb},
		{"hex text read as base64", misread, hexThumb},
		{"empty", nil, ""},
		{"other length", []byte("short"), ""},
		{"40 bytes not hex", []byte("ZZED9B5038A47B9E2E2190715CC238359D4F8F73"), ""},
	}
	for _, tt := range tests {
		if got := ThumbprintFromCustomKeyIdentifier(tt.cki); got != tt.want {
			t.Errorf("ThumbprintFromCustomKeyIdentifier(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestKeyCredentialThumbprintPrefersKey(t *testing.T) {
	der := []byte("not really a certificate, but hashed all the same")
	k := KeyCredential{Key: der, CustomKeyIdentifier: []byte("0000000000000000000000000000000000000000")}
	if got := k.Thumbprint(); got != ThumbprintSHA1(der) {
		t.Errorf("Thumbprint = %s, want the key's %s", got, ThumbprintSHA1(der))
	}
	k.Key = nil
	if got := k.Thumbprint(); got != "0000000000000000000000000000000000000000" {
		t.Errorf("Thumbprint without key = %s", got)
	}
}

func TestDaysBetween(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {23 * time.Hour, 0}, {24 * time.Hour, 1}, {47 * time.Hour, 1},
		{-time.Second, -1}, {-24 * time.Hour, -1}, {-25 * time.Hour, -2},
	}
	for _, tt := range tests {
		if got := DaysBetween(base, base.Add(tt.d)); got != tt.want {
			t.Errorf("DaysBetween(+%s) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestCommonNameAndNormalize(t *testing.T) {
	c := Certificate{Subject: "CN=AUCloud VB365 2027,O=AUCloud,C=AU"}
	if got := c.CommonName(); got != "AUCloud VB365 2027" {
		t.Errorf("CommonName = %q", got)
	}
	if got := (Certificate{Subject: "O=NoCN"}).CommonName(); got != "O=NoCN" {
		t.Errorf("CommonName without CN = %q", got)
	}
	if got := NormalizeThumbprint("52:ed 9b-50"); got != "52ED9B50" {
		t.Errorf("NormalizeThumbprint = %q", got)
	}
}
