package certs

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// Key credential constants as Graph spells them.
const (
	KeyTypeX509Cert = "AsymmetricX509Cert"
	KeyUsageVerify  = "Verify"
)

// MaxDisplayNameLen is how many characters of a credential's displayName Graph keeps.
const MaxDisplayNameLen = 90

// KeyCredential is one entry of an application's keyCredentials collection in Graph.
type KeyCredential struct {
	// KeyID is the credential's GUID. Graph keeps a credential across a PATCH by this id.
	KeyID string
	// Type is "AsymmetricX509Cert" for certificates.
	Type string
	// Usage is "Verify" for sign-in certificates.
	Usage string
	// Key is the certificate's DER. Graph returns it only for a single-object read with
	// $select; elsewhere it is nil.
	Key []byte
	// DisplayName is the description the Azure portal shows (Graph keeps 90 characters).
	DisplayName string
	// StartDateTime and EndDateTime are the validity Graph records, in UTC.
	StartDateTime time.Time
	EndDateTime   time.Time
	// CustomKeyIdentifier is Graph's binary identifier; for certificates it normally holds
	// the SHA-1 thumbprint.
	CustomKeyIdentifier []byte
}

// Thumbprint returns the credential's SHA-1 thumbprint in upper-case hex: computed from Key
// when Graph returned it, otherwise taken from CustomKeyIdentifier (either the 20 raw bytes
// or the 40-character hex text that some clients store). It returns "" when neither tells.
func (k KeyCredential) Thumbprint() string {
	if len(k.Key) > 0 {
		return ThumbprintSHA1(k.Key)
	}
	return ThumbprintFromCustomKeyIdentifier(k.CustomKeyIdentifier)
}

// ThumbprintFromCustomKeyIdentifier reads a thumbprint out of a customKeyIdentifier value:
// 20 raw bytes, 40 hex characters, or the 30 bytes a client gets when it base64-decodes a
// 40-character hex string that Graph sent as if it were Edm.Binary. Anything else gives "".
func ThumbprintFromCustomKeyIdentifier(cki []byte) string {
	switch len(cki) {
	case 20:
		return strings.ToUpper(hex.EncodeToString(cki))
	case 30:
		return ThumbprintFromCustomKeyIdentifier([]byte(base64.StdEncoding.EncodeToString(cki)))
	case 40:
		if _, err := hex.DecodeString(string(cki)); err == nil {
			return strings.ToUpper(string(cki))
		}
	}
	return ""
}

// Clone returns a deep copy, so callers can change the copy's byte slices freely.
func (k KeyCredential) Clone() KeyCredential {
	k.Key = append([]byte(nil), k.Key...)
	k.CustomKeyIdentifier = append([]byte(nil), k.CustomKeyIdentifier...)
	return k
}

// Application is an app registration as read from Graph.
type Application struct {
	// ObjectID is the application object's id (Graph's "id").
	ObjectID string
	// AppID is the client id people know the app by.
	AppID       string
	DisplayName string
	// KeyCredentials holds every certificate credential, with Key when Graph returned it.
	KeyCredentials []KeyCredential
}
