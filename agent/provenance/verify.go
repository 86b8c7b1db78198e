package provenance

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/aucloud/certagent/agent/certs"
)

// Verifier decides the provenance of certificates with the pinned keys. The zero value and
// nil have no key and require nothing.
type Verifier struct {
	keys     []Key
	required bool
}

// NewVerifier returns a verifier over keys (duplicates dropped). With required, a
// certificate without a signature is refused; without it, a signature is checked when one
// comes (a bad one is refused all the same) and a certificate without one passes.
func NewVerifier(keys []Key, required bool) *Verifier {
	v := &Verifier{required: required}
	for _, k := range keys {
		if !slices.ContainsFunc(v.keys, func(o Key) bool { return equalKeys(o, k) }) {
			v.keys = append(v.keys, k)
		}
	}
	return v
}

// Required reports whether every certificate must come signed.
func (v *Verifier) Required() bool { return v != nil && v.required }

// Keys returns the pinned keys.
func (v *Verifier) Keys() []Key {
	if v == nil {
		return nil
	}
	return slices.Clone(v.keys)
}

// Result is what the signature says about a certificate.
type Result struct {
	// Signer is the pinned key that made the signature; nil when there was none to check
	// (no signature, or no key pinned) or it was refused.
	Signer *Key
	// Reason refuses the certificate; nil when it may go on.
	Reason *certs.Reason
	// Unchecked is set when a signature came but no key is pinned to check it with: the
	// certificate goes on as if unsigned.
	Unchecked bool
}

// Check judges signature (nil: none came) against data, the bytes it must be a signature of.
// alt are other forms of the same input the signer may have signed instead (an API
// submission's certificate field decoded from base64); a signature of any of them counts.
// Check does not keep or change its arguments.
func (v *Verifier) Check(signature []byte, data []byte, alt ...[]byte) Result {
	if signature == nil {
		if v.Required() {
			return Result{Reason: reason(certs.SignatureMissing, "no signature came with the certificate, and provenance.required is on: the provider must sign the certificate file with its key and deliver the signature with it (name.cer.sig beside name.cer, the signature field of the API, or source.url + \".sig\")")}
		}
		return Result{}
	}
	if v == nil || len(v.keys) == 0 {
		return Result{Unchecked: true}
	}
	if len(signature) > certs.MaxSignatureSize {
		return Result{Reason: reason(certs.SignatureInvalid, "the signature is %d bytes, more than the %d KiB a signature can be", len(signature), certs.MaxSignatureSize>>10)}
	}
	sigs := decodings(signature)
	inputs := append([][]byte{data}, alt...)
	for _, k := range v.keys {
		for _, s := range sigs {
			for _, in := range inputs {
				if k.verify(in, s) {
					signer := k
					return Result{Signer: &signer}
				}
			}
		}
	}
	return Result{Reason: v.refusal(sigs)}
}

// refusal explains why none of the decodings of a signature verified. It judges the last
// decoding: bytes that are base64 text are never also a binary signature.
func (v *Verifier) refusal(sigs [][]byte) *certs.Reason {
	s := sigs[len(sigs)-1]
	sh := shapeOf(s, v.keys)
	if sh.kind == kindNone {
		return reason(certs.SignatureInvalid, "the signature is not an ECDSA, Ed25519 or RSA signature, as bytes or in base64 (damaged or truncated?); ask the provider for the signature again")
	}
	var same []Key
	for _, k := range v.keys {
		if sh.fits(k) {
			same = append(same, k)
		}
	}
	switch {
	case len(same) == 0:
		return reason(certs.SignerNotPinned, "the signature is an %s signature, and no pinned key is of that kind (pinned: %s): a key that is not pinned signed it; if the provider changed its signing key, pin the new key in provenance.keys",
			sh, describeKeys(v.keys))
	case sh.kind != kindRSA:
		return reason(certs.SignatureInvalid, "the %s signature does not verify with the pinned key%s of its kind (%s) over this file's bytes: the file was changed after it was signed, the signature is another file's, or a key that is not pinned made it (an %s signature does not tell which); ask the provider for the certificate and its signature again",
			sh, plural(len(same)), labels(same), sh.family())
	}
	for _, k := range same {
		if k.madeRSA(s) {
			return reason(certs.SignatureInvalid, "the signature was made by pinned key %s, but over other bytes than this file's: the file was changed after it was signed, or the signature is another file's", k)
		}
	}
	return reason(certs.SignerNotPinned, "the %s signature was made by none of the pinned keys of its size (%s): a key that is not pinned signed it; if the provider changed its signing key, pin the new key in provenance.keys", sh, labels(same))
}

// verify reports whether sig is k's signature of data.
func (k Key) verify(data, sig []byte) bool {
	switch p := k.pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(data)
		return ecdsa.VerifyASN1(p, sum[:], sig)
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(p, data, sig)
	case *rsa.PublicKey:
		if len(sig) != p.Size() {
			return false
		}
		sum := sha256.Sum256(data)
		if !k.pssOnly && rsa.VerifyPKCS1v15(p, crypto.SHA256, sum[:], sig) == nil {
			return true
		}
		return rsa.VerifyPSS(p, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	}
	return false
}

// madeRSA reports whether the RSA signature sig was made by k, whatever it signed: the
// public operation shows a well-formed PKCS#1 v1.5 or PSS (SHA-256) encoding only for the
// key that made it. Only used to explain a refusal.
func (k Key) madeRSA(sig []byte) bool {
	p, ok := k.pub.(*rsa.PublicKey)
	if !ok || len(sig) != p.Size() {
		return false
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(p.N) >= 0 {
		return false
	}
	em := new(big.Int).Exp(s, big.NewInt(int64(p.E)), p.N).FillBytes(make([]byte, p.Size()))
	return pkcs1v15Shape(em) || pssShape(em, p.N.BitLen())
}

// pkcs1v15Shape reports whether em is 00 01 FF..FF 00 followed by anything.
func pkcs1v15Shape(em []byte) bool {
	if len(em) < 11 || em[0] != 0 || em[1] != 1 {
		return false
	}
	i := 2
	for i < len(em) && em[i] == 0xff {
		i++
	}
	return i >= 10 && i < len(em) && em[i] == 0
}

// pssShape reports whether em is an EMSA-PSS encoding with SHA-256 and MGF1-SHA-256 (RFC
// 8017, 9.1.2, steps 4 to 10: everything but the comparison with the message's hash).
func pssShape(em []byte, modBits int) bool {
	const hLen = sha256.Size
	emBits := modBits - 1
	emLen := (emBits + 7) / 8
	if len(em) > emLen { // the leading byte of a modulus whose bit length is 8k+1
		if em[0] != 0 {
			return false
		}
		em = em[len(em)-emLen:]
	}
	if emLen < hLen+2 || em[emLen-1] != 0xbc {
		return false
	}
	db := bytes.Clone(em[:emLen-hLen-1])
	h := em[emLen-hLen-1 : emLen-1]
	top := byte(0xff >> (8*emLen - emBits))
	if db[0]&^top != 0 {
		return false
	}
	mgf1XOR(db, h)
	db[0] &= top
	i := 0
	for i < len(db) && db[i] == 0 {
		i++
	}
	return i < len(db) && db[i] == 1
}

// mgf1XOR xors out with MGF1-SHA-256 of seed.
func mgf1XOR(out, seed []byte) {
	var counter [4]byte
	done := 0
	for c := uint32(0); done < len(out); c++ {
		binary.BigEndian.PutUint32(counter[:], c)
		h := sha256.New()
		h.Write(seed)
		h.Write(counter[:])
		for _, b := range h.Sum(nil) {
			if done == len(out) {
				break
			}
			out[done] ^= b
			done++
		}
	}
}

// Decoded returns the bytes data stands for when it is base64 text (an API submission's
// certificate field holding a DER file), as the one element of the result; nil otherwise.
// Check takes it as an alternative form of the signed bytes.
func Decoded(data []byte) [][]byte {
	if d, ok := decodeBase64(data); ok {
		return [][]byte{d}
	}
	return nil
}

// decodings returns the ways a signature file's bytes may hold the signature: as they are;
// when they are base64 text, decoded (the form of cosign and `openssl base64`); and when
// that is base64 again, decoded twice (a base64 .sig sent through the API as base64).
func decodings(sig []byte) [][]byte {
	out := [][]byte{sig}
	cur := sig
	for range 2 {
		d, ok := decodeBase64(cur)
		if !ok {
			break
		}
		out = append(out, d)
		cur = d
	}
	return out
}

// decodeBase64 decodes standard or URL-safe base64, padded or not, with whitespace
// anywhere (line breaks every 64 characters, a final newline, CRLF).
func decodeBase64(b []byte) ([]byte, bool) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, string(b))
	if s == "" {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.Strict().DecodeString(s); err == nil && len(d) > 0 {
			return d, true
		}
	}
	return nil, false
}

// A shape is what kind of signature some bytes are, judged by their form alone.
type shape struct {
	kind int
	bits int // ECDSA: the bit length of the larger of r and s; RSA: the signature's length in bits
}

const (
	kindNone = iota
	kindECDSA
	kindEd25519
	kindRSA
)

// shapeOf judges the form of sig: an ECDSA signature (a DER SEQUENCE of two positive
// INTEGERs and nothing else), an Ed25519 one (64 bytes), an RSA one (the size of one of
// keys, or 256 bytes or more in steps of 32: RSA keys come in whole multiples of 256 bits,
// so another length is a damaged signature), or none of them.
func shapeOf(sig []byte, keys []Key) shape {
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err == nil && len(rest) == 0 && rs.R.Sign() > 0 && rs.S.Sign() > 0 {
		return shape{kind: kindECDSA, bits: max(rs.R.BitLen(), rs.S.BitLen())}
	}
	switch n := len(sig); {
	case n == ed25519.SignatureSize:
		return shape{kind: kindEd25519, bits: 512}
	case n*8 >= MinRSABits && n*8 <= MaxRSABits && n%32 == 0:
		return shape{kind: kindRSA, bits: n * 8}
	}
	for _, k := range keys {
		if p, ok := k.pub.(*rsa.PublicKey); ok && p.Size() == len(sig) {
			return shape{kind: kindRSA, bits: len(sig) * 8}
		}
	}
	return shape{}
}

// fits reports whether a key of k's kind and size could have made a signature of shape sh.
func (sh shape) fits(k Key) bool {
	switch p := k.pub.(type) {
	case *ecdsa.PublicKey:
		// r and s are below the curve's order; a P-384 signature's are above 2^256 all but
		// always, so the sizes tell the curves apart.
		n := p.Curve.Params().BitSize
		return sh.kind == kindECDSA && sh.bits <= n && (n == 256 || sh.bits > 256)
	case ed25519.PublicKey:
		return sh.kind == kindEd25519
	case *rsa.PublicKey:
		return sh.kind == kindRSA && sh.bits == p.Size()*8
	}
	return false
}

func (sh shape) String() string {
	switch sh.kind {
	case kindECDSA:
		if sh.bits > 256 {
			return "ECDSA P-384"
		}
		return "ECDSA P-256"
	case kindEd25519:
		return "Ed25519"
	case kindRSA:
		return fmt.Sprintf("RSA %d", sh.bits)
	}
	return "unknown"
}

// family names the kind of signature without its size.
func (sh shape) family() string {
	if sh.kind == kindEd25519 {
		return "Ed25519"
	}
	return "ECDSA"
}

func labels(keys []Key) string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Label)
	}
	return strings.Join(out, ", ")
}

func describeKeys(keys []Key) string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Label+" "+k.Algorithm)
	}
	return strings.Join(out, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func reason(code certs.Code, format string, args ...any) *certs.Reason {
	return &certs.Reason{Code: code, Message: fmt.Sprintf(format, args...)}
}
