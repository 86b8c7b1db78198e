package graph

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/aucloud/certagent/agent/certs"
)

// CredentialSource gives the current sign-in certificate and key. The private key never
// leaves the process: it is used only to sign client assertions and addKey/removeKey proofs.
//
// Current is called before every token request and every proof, so a source may change what
// it returns at any time (renewal); it must be safe for concurrent use. The key must be RSA
// (Entra ID app authentication); an *rsa.PrivateKey is handed to azidentity, any other
// crypto.Signer with an RSA public key (a key in a hardware store) signs the client
// assertion itself.
type CredentialSource interface {
	Current() (cert *x509.Certificate, key crypto.Signer)
}

// sourceCredential is an azcore.TokenCredential that signs in with whatever certificate the
// CredentialSource holds now. It keeps one azidentity credential, and builds a new one (with
// an empty token cache) when the certificate's thumbprint changes.
type sourceCredential struct {
	c *Client

	// mu protects the fields below.
	mu sync.Mutex
	// cert is the certificate cred was built for; thumb is its SHA-1 thumbprint.
	cert  *x509.Certificate
	thumb string
	cred  azcore.TokenCredential
}

var _ azcore.TokenCredential = (*sourceCredential)(nil)

// GetToken gets a token for the current certificate. Its errors are *Error with SignIn set.
func (s *sourceCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	cred, tp, err := s.current()
	if err != nil {
		return azcore.AccessToken{}, err
	}
	tok, err := cred.GetToken(ctx, opts)
	if err != nil {
		return azcore.AccessToken{}, s.c.signInError(ctx, err, tp)
	}
	return tok, nil
}

// forget drops the azidentity credential and with it its cached tokens: the next GetToken
// signs in again.
func (s *sourceCredential) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cred, s.cert = nil, nil
}

// current returns the credential for the source's certificate, building it when the
// certificate changed.
func (s *sourceCredential) current() (azcore.TokenCredential, string, error) {
	cert, key := s.c.source.Current()
	if cert == nil || key == nil {
		return nil, "", s.c.localSignInError("", "the agent has no sign-in certificate and key", nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cred != nil && cert == s.cert {
		return s.cred, s.thumb, nil
	}
	tp := certs.ThumbprintSHA1(cert.Raw)
	if s.cred != nil && tp == s.thumb {
		s.cert = cert
		return s.cred, s.thumb, nil
	}
	cred, err := s.c.newAzureCredential(cert, key)
	if err != nil {
		return nil, tp, s.c.localSignInError(tp, "building the sign-in credential", err)
	}
	switch {
	case s.thumb != "" && s.thumb != tp:
		s.c.log.Info("sign-in certificate changed; signing in again", "old_thumbprint", s.thumb, "thumbprint", tp)
	case s.thumb == tp:
		s.c.log.Info("Graph refused the cached access token; signing in again", "thumbprint", tp)
	}
	s.cert, s.thumb, s.cred = cert, tp, cred
	return cred, tp, nil
}

// localSignInError is a sign-in failure found before asking the token endpoint.
func (c *Client) localSignInError(tp, what string, err error) *Error {
	detail := fmt.Sprintf("signing in as app %s", c.clientID)
	if tp != "" {
		detail += " with certificate " + tp
	}
	detail += ": " + what
	if err != nil {
		detail += ": " + err.Error()
	}
	return &Error{SignIn: true, Thumbprint: tp, clientID: c.clientID, reason: certs.AuthFailed, detail: detail, err: err}
}

// newAzureCredential builds the azidentity credential for cert and key.
func (c *Client) newAzureCredential(cert *x509.Certificate, key crypto.Signer) (azcore.TokenCredential, error) {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("the certificate's key is not RSA; Entra ID app authentication needs RSA")
	}
	if !pub.Equal(key.Public()) {
		return nil, errors.New("the private key does not belong to the certificate")
	}
	opts := azcore.ClientOptions{
		Cloud:     c.cloud,
		Transport: c.tokenHTTP,
		Retry: policy.RetryOptions{
			MaxRetries:  tokenMaxRetries,
			RetryDelay:  tokenRetryDelay,
			ShouldRetry: shouldRetryToken,
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "certagent"},
	}
	if rk, ok := key.(*rsa.PrivateKey); ok {
		return azidentity.NewClientCertificateCredential(c.tenantID, c.clientID, []*x509.Certificate{cert}, rk,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	}
	// MSAL takes only *rsa.PrivateKey: sign the client assertion here instead.
	aud := c.tokenEndpoint()
	return azidentity.NewClientAssertionCredential(c.tenantID, c.clientID, func(context.Context) (string, error) {
		return signAssertion(cert, key, c.clientID, aud, c.now())
	}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
}

// shouldRetryToken is azcore's retry decision for the token endpoint: its default (408, 429,
// 500, 502, 503, 504 and network errors), except that a server certificate the client does
// not trust is not retried, since waiting does not fix configuration.
func shouldRetryToken(resp *http.Response, err error) bool {
	if err != nil {
		return !isTLSVerifyError(err)
	}
	return isTransientStatus(resp.StatusCode)
}

// TrySignIn asks the token endpoint for a Graph token with cert and key, without changing the
// certificate the client signs in with. The agent's renewal uses it to prove that a new
// certificate it added to its app is accepted before it relies on it: Entra takes a while to
// accept a new key everywhere (docs/graph.md, "Sign-in propagation"), and meanwhile the
// client keeps signing in with the old one. Its errors are *Error with SignIn set; a key
// Entra does not accept yet is AADSTS700027.
func (c *Client) TrySignIn(ctx context.Context, cert *x509.Certificate, key crypto.Signer) error {
	tp := certs.ThumbprintSHA1(cert.Raw)
	cred, err := c.newAzureCredential(cert, key)
	if err != nil {
		return c.localSignInError(tp, "building the sign-in credential", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}}); err != nil {
		return c.signInError(ctx, err, tp)
	}
	return nil
}
