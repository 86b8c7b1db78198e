package graph

import (
	"crypto"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	jsonserialization "github.com/microsoft/kiota-serialization-json-go"

	"github.com/aucloud/certagent/agent/certs"
)

// SetTokenRetryDelay shortens azcore's first retry delay on the token endpoint for one test.
func SetTokenRetryDelay(t testing.TB, d time.Duration) {
	old := tokenRetryDelay
	tokenRetryDelay = d
	t.Cleanup(func() { tokenRetryDelay = old })
}

// GraphHTTPClient returns the *http.Client under the SDK's request adapter (the SDK's
// middleware, the client's own checks, the base transport).
func (c *Client) GraphHTTPClient() *http.Client { return c.graphHTTP }

// ReplaceBody serializes the PATCH body Replace would send for creds, exactly as the SDK
// writes it.
func ReplaceBody(creds []certs.KeyCredential) ([]byte, error) {
	body, err := replaceBody(creds)
	if err != nil {
		return nil, err
	}
	w := jsonserialization.NewJsonSerializationWriter()
	if err := w.WriteObjectValue("", body); err != nil {
		return nil, err
	}
	return w.GetSerializedContent()
}

// Classify runs the client's error classification on err as if the operation's last answer
// had status and header (status 0: no answer).
func Classify(c *Client, op, object string, err error, status int, header http.Header) *Error {
	var last *answer
	if status != 0 {
		last = &answer{status: status, header: header}
	}
	return c.classify(op, object, err, last, nil)
}

// ParseRetryAfter exposes parseRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration { return parseRetryAfter(v, now) }

// SignProof exposes signProof.
func SignProof(cert *x509.Certificate, key crypto.Signer, objectID string, now time.Time) (string, error) {
	return signProof(cert, key, objectID, now)
}

// ProofAudience is the audience the client puts in proofs.
const ProofAudience = proofAudience
