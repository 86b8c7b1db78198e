package certs

// Code is a stable, machine-readable reason code. Scripts switch on these strings: never
// change one once released.
type Code string

// Verdict codes: why a file or a certificate is refused (docs/contract.md, "Certificate verdicts").
const (
	// NotACertificate: nothing in the input parses as a certificate.
	NotACertificate Code = "not_a_certificate"
	// ContainsPrivateKey: the input holds private key material (a PEM key block, an OpenSSH
	// key, PKCS#12/PFX). Such input is never uploaded and its bytes never logged.
	ContainsPrivateKey Code = "contains_private_key"
	// MultipleCertificates: more than one certificate in the input.
	MultipleCertificates Code = "multiple_certificates"
	// Expired: notAfter is in the past. (A notBefore in the future is accepted: a provider may
	// send next year's certificate early.)
	Expired Code = "expired"
	// ExpiresTooSoon: fewer than policy.min_validity_days days are left.
	ExpiresTooSoon Code = "expires_too_soon"
	// WeakKey: an RSA key shorter than policy.min_rsa_bits.
	WeakKey Code = "weak_key"
	// UnsupportedKeyType: not an RSA key; Entra ID app authentication needs RSA.
	UnsupportedKeyType Code = "unsupported_key_type"
	// NotAllowed: subject, issuer or thumbprint misses the policy's allow-list.
	NotAllowed Code = "not_allowed"
	// TooLarge: the input is larger than MaxFileSize.
	TooLarge Code = "too_large"
	// UnsupportedFile: not a regular file, or an extension the agent does not take.
	UnsupportedFile Code = "unsupported_file"
	// NoTarget: with several targets, no target's policy names the certificate (it was
	// dropped at the top of the drop folder, or posted without a target).
	NoTarget Code = "no_target"
	// AmbiguousTarget: with several targets, the policies of more than one name the
	// certificate, and the config does not send it to all of them.
	AmbiguousTarget Code = "ambiguous_target"
	// SignatureMissing: provenance.required is on and the certificate came without a
	// signature (a drop file's name.cer.sig did not arrive within provenance.wait, an API
	// submission had no signature, source.url's .sig was not there).
	SignatureMissing Code = "signature_missing"
	// SignatureInvalid: the signature is not a signature of these exact bytes by a pinned
	// key: the file changed after it was signed, the signature belongs to another file, it is
	// damaged or truncated, or (for ECDSA and Ed25519, whose signatures do not tell who made
	// them) a key of the same kind that is not pinned made it.
	SignatureInvalid Code = "signature_invalid"
	// SignerNotPinned: the signature is well formed but cannot be from any pinned key: its
	// algorithm or size fits none of them, or no pinned RSA key made it.
	SignerNotPinned Code = "signer_not_pinned"
	// CertificateMissing: a signature file (name.cer.sig) whose certificate (name.cer) did
	// not arrive in the drop folder within provenance.wait.
	CertificateMissing Code = "certificate_missing"
)

// MaxFileSize is the largest input certagent reads (1 MiB). A certificate is a few KiB.
const MaxFileSize = 1 << 20

// MaxSignatureSize is the largest detached signature certagent reads (64 KiB). An RSA
// signature of 16384 bits in base64 is under 3 KiB.
const MaxSignatureSize = 64 << 10

// Reason says why something was refused or failed: a stable code and a message for people.
// Messages never hold key material.
type Reason struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (r Reason) Error() string { return string(r.Code) + ": " + r.Message }

// VerdictCodes lists every verdict code, in the order of docs/contract.md.
var VerdictCodes = []Code{
	NotACertificate, ContainsPrivateKey, MultipleCertificates, Expired, ExpiresTooSoon,
	WeakKey, UnsupportedKeyType, NotAllowed, TooLarge, UnsupportedFile, NoTarget, AmbiguousTarget,
	SignatureMissing, SignatureInvalid, SignerNotPinned, CertificateMissing,
}

// ProvenanceCodes are the verdict codes about a certificate's signature: who delivered it,
// rather than what it is.
var ProvenanceCodes = []Code{SignatureMissing, SignatureInvalid, SignerNotPinned, CertificateMissing}

// Failure codes: why a rotation failed or was rejected after it was accepted.
const (
	// GraphError: Graph refused the request for a reason not listed below.
	GraphError Code = "graph_error"
	// GraphDenied: 403 Authorization_RequestDenied: the agent lacks the permission, or is
	// not an owner of the target app.
	GraphDenied Code = "graph_denied"
	// AppNotFound: 404: the target app does not exist in the tenant.
	AppNotFound Code = "app_not_found"
	// GraphBadRequest: 400: Graph refused the request body (for example the manifest size cap).
	GraphBadRequest Code = "graph_bad_request"
	// AppFull: Directory_ResourceSizeExceeded: the app registration holds as many
	// credentials as Entra allows; old certificates must be retired first. Never retried.
	AppFull Code = "app_full"
	// GraphUnavailable: throttling, 5xx or network failures, through every retry.
	GraphUnavailable Code = "graph_unavailable"
	// AuthFailed: the token endpoint refused the agent's own credential (AADSTS...).
	AuthFailed Code = "auth_failed"
	// VerifyFailed: the read-back after a write did not show what was written, or showed
	// that a credential which was there before is gone.
	VerifyFailed Code = "verify_failed"
	// RejectedByPerson: a person rejected the rotation.
	RejectedByPerson Code = "rejected_by_person"
)
