// Package provenance decides whether a certificate comes from the provider: whether a
// detached signature over the certificate file's exact bytes was made by one of the public
// keys the customer pinned (config provenance.keys). Allow-lists by subject or issuer cannot
// decide this, since anyone can make a certificate with any subject; a signature can.
//
// It is pure: no clock, no I/O but ReadKeyFile, no goroutines. A Verifier is safe for
// concurrent use.
//
// # Signatures it takes
//
// A signature is over the file's bytes as they are (not over the DER inside a PEM file), in
// the forms the provider's tools write, as the file's bytes or as their base64 (whitespace
// and line breaks allowed, as `openssl base64` wraps it):
//
//   - ECDSA P-256 or P-384 with SHA-256, ASN.1 DER: `openssl dgst -sha256 -sign key.pem
//     -out name.cer.sig name.cer`. `cosign sign-blob --key cosign.key name.cer` writes the
//     same signature in base64: cosign hashes the blob with SHA-256 and signs the digest
//     with ecdsa.SignASN1 (sigstore/cosign cmd/cosign/cli/sign/sign_blob.go, which writes
//     base64.StdEncoding of the signature, with --b64 on by default; sigstore/sigstore
//     pkg/signature/ecdsa.go, SignMessage; "cosign sign-blob" in the cosign docs,
//     https://docs.sigstore.dev/cosign/signing/signing_with_blobs/). Its `cosign.pub` is a
//     PEM "PUBLIC KEY" like openssl's.
//   - Ed25519 over the bytes themselves (pure EdDSA): `openssl pkeyutl -sign -rawin -inkey
//     key.pem -in name.cer -out name.cer.sig` (OpenSSL 3.0's dgst refuses Ed25519 keys).
//   - RSA of 2048 bits or more with SHA-256, PKCS#1 v1.5 (`openssl dgst -sha256 -sign
//     key.pem`) or PSS with any salt length (`... -sigopt rsa_padding_mode:pss`, or any
//     signature by an RSA-PSS key, `openssl genpkey -algorithm RSA-PSS`).
//
// # Which refusal
//
// A signature that is not one of the forms above (damaged, truncated, a text file) is
// signature_invalid. One whose algorithm or size fits no pinned key is signer_not_pinned. An
// RSA signature that a pinned key of its size made over other bytes is signature_invalid
// (its padding shows the key made it); one that none of them made is signer_not_pinned. An
// ECDSA or Ed25519 signature of the kind of a pinned key that does not verify is
// signature_invalid: such a signature does not say who made it, so "made over other bytes"
// and "made by another key of the same kind" cannot be told apart, and the message says so.
package provenance
