// Package certpolicy judges certificate input (a file, or a request body) against the
// certificate policy and returns a verdict with a stable reason code and the certificate's facts.
//
// It is pure: no goroutines, no clock (time is passed in), and no I/O except in ReadFile. A
// Policy is a plain value and safe for concurrent use.
//
// # What the policy takes
//
// One X.509 certificate with an RSA key, as DER, as PEM ("CERTIFICATE", "X509 CERTIFICATE" or
// "TRUSTED CERTIFICATE" blocks; LF, CRLF or CR line ends; with or without a UTF-8 byte order
// mark or UTF-16 as Windows PowerShell writes it; with any text around the block), as bare
// base64 of the DER (one line or wrapped), or as a PKCS#7 (.p7b) bundle that holds exactly
// that one certificate (the certificate is taken out of it; Graph gets the certificate alone).
//
// # Order of the rules
//
// The first rule that fails decides:
//
//	too_large → contains_private_key → not_a_certificate / multiple_certificates →
//	unsupported_key_type → weak_key → expired → expires_too_soon → not_allowed
//
// contains_private_key wins over everything but size: key material anywhere in the input
// (next to a valid certificate, inside a block labelled CERTIFICATE, base64 without armour,
// a PKCS#12/PFX named .cer) refuses the whole input, so that the agent never passes on, logs
// or keeps it.
//
// # Private key material
//
// Buffers the check decodes into are zeroed before it returns. The caller owns the input and
// should clear it when the verdict is contains_private_key. Messages never quote input bytes
// other than a certificate's subject and issuer and a short PEM type.
package certpolicy
