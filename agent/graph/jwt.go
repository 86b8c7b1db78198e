package graph

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/aucloud/certagent/agent/certs"
)

// proofAudience is the audience of addKey/removeKey proofs: the id of the (retired) Azure AD
// Graph, 00000002-..., not Microsoft Graph's 00000003-.... Microsoft's page "Generate proof of
// possession tokens for rolling keys" (Graph docs, concepts/application-rollkey-prooftoken)
// and its C# and PowerShell samples use it; a proof for 00000003 is refused with 401
// Authentication_MissingOrMalformed. See docs/graph.md.
const proofAudience = "00000002-0000-0000-c000-000000000000"

// proofLifetime is how long a proof is valid; Graph allows at most 10 minutes between nbf and
// exp.
const proofLifetime = 10 * time.Minute

// jwtHeader is the JOSE header of the JWTs the client signs.
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	// X5t is the certificate's SHA-1 thumbprint, base64url without padding.
	X5t string `json:"x5t"`
	// X5tS256 is the certificate's SHA-256 thumbprint, base64url without padding.
	X5tS256 string `json:"x5t#S256,omitempty"`
	// Kid is the SHA-1 thumbprint as upper-case hex (as Microsoft's proof sample sets it).
	Kid string `json:"kid,omitempty"`
}

// proofClaims are the claims of an addKey/removeKey proof.
type proofClaims struct {
	Aud string `json:"aud"`
	Iss string `json:"iss"`
	Nbf int64  `json:"nbf"`
	Exp int64  `json:"exp"`
}

// assertionClaims are the claims of a client assertion (RFC 7523) for the token endpoint.
type assertionClaims struct {
	Aud string `json:"aud"`
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Jti string `json:"jti"`
	Nbf int64  `json:"nbf"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

func headerFor(cert *x509.Certificate) jwtHeader {
	s1 := sha1.Sum(cert.Raw)
	s256 := sha256.Sum256(cert.Raw)
	return jwtHeader{
		Alg:     "RS256",
		Typ:     "JWT",
		X5t:     base64.RawURLEncoding.EncodeToString(s1[:]),
		X5tS256: base64.RawURLEncoding.EncodeToString(s256[:]),
	}
}

// signProof returns the proof of possession Graph's addKey and removeKey require: an RS256
// JWT signed with key (the private key of cert, a certificate valid on the application),
// aud proofAudience, iss the application's object id, valid from now for 10 minutes, base64url
// segments without padding. The proof is a credential: never log it.
func signProof(cert *x509.Certificate, key crypto.Signer, objectID string, now time.Time) (string, error) {
	h := headerFor(cert)
	h.Kid = certs.ThumbprintSHA1(cert.Raw)
	return signJWT(key, h, proofClaims{
		Aud: proofAudience,
		Iss: objectID,
		Nbf: now.Unix(),
		Exp: now.Add(proofLifetime).Unix(),
	})
}

// signAssertion returns a client assertion for the token endpoint aud, as MSAL would build
// it, for keys MSAL cannot use (any crypto.Signer that is not an *rsa.PrivateKey).
func signAssertion(cert *x509.Certificate, key crypto.Signer, clientID, aud string, now time.Time) (string, error) {
	return signJWT(key, headerFor(cert), assertionClaims{
		Aud: aud,
		Iss: clientID,
		Sub: clientID,
		Jti: uuid.NewString(),
		Nbf: now.Unix(),
		Iat: now.Unix(),
		Exp: now.Add(proofLifetime).Unix(),
	})
}

// signJWT signs header and claims with RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
func signJWT(key crypto.Signer, header jwtHeader, claims any) (string, error) {
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(input))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing with the agent's key: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
