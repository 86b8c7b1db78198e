package certpolicy

import (
	"bytes"
	"errors"
)

// This file recognises DER structures by their shape alone: a few tag and length headers,
// never a full parse. That is enough to tell a certificate from a CSR, a CRL, a public key,
// every common private key format and PKCS#12, and it costs nothing on garbage.

// ASN.1 tags (universal class, plus the context-specific constructed tags the formats use).
const (
	tagInteger     = 0x02
	tagBitString   = 0x03
	tagOctetString = 0x04
	tagOID         = 0x06
	tagUTCTime     = 0x17
	tagGenTime     = 0x18
	tagSequence    = 0x30
	tagSet         = 0x31
	tagContext0    = 0xa0 // [0] constructed
	tagContext1    = 0xa1 // [1] constructed
)

var (
	errDERTruncated = errors.New("the data ends before its declared length")
	errDERTag       = errors.New("an ASN.1 tag certificates never use")
	errDERLength    = errors.New("an impossible ASN.1 length")
)

// OIDs as their DER content bytes.
var (
	oidPKCS7Data       = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01} // 1.2.840.113549.1.7.1
	oidPKCS7SignedData = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02} // 1.2.840.113549.1.7.2
)

// opensshMagic starts the binary form of an OpenSSH private key (the body of an
// "OPENSSH PRIVATE KEY" block).
var opensshMagic = []byte("openssh-key-v1\x00")

// tlv is one BER/DER element.
type tlv struct {
	tag byte
	// full is the element with its header. For an indefinite length it runs to the end of
	// the input, since the end is not known without parsing every child.
	full []byte
	// content is the element without its header (to the end of the input when indefinite).
	content    []byte
	indefinite bool
}

// readTLV reads one element from the front of b and returns it and what follows it. It takes
// single-byte tags (every type that certificates and keys use), definite lengths of up to four
// bytes, and BER's indefinite length (some PKCS#12 writers use it), for which rest is nil.
func readTLV(b []byte) (e tlv, rest []byte, err error) {
	if len(b) < 2 {
		return e, nil, errDERTruncated
	}
	tag := b[0]
	if tag&0x1f == 0x1f {
		return e, nil, errDERTag
	}
	hdr := 2
	var n uint64
	switch l := b[1]; {
	case l < 0x80:
		n = uint64(l)
	case l == 0x80:
		if tag&0x20 == 0 { // only constructed elements may have an indefinite length
			return e, nil, errDERLength
		}
		return tlv{tag: tag, full: b, content: b[2:], indefinite: true}, nil, nil
	default:
		k := int(l & 0x7f)
		if k > 4 {
			return e, nil, errDERLength
		}
		if len(b) < 2+k {
			return e, nil, errDERTruncated
		}
		for _, c := range b[2 : 2+k] {
			n = n<<8 | uint64(c)
		}
		hdr += k
	}
	if n > uint64(len(b)-hdr) {
		return e, nil, errDERTruncated
	}
	end := hdr + int(n)
	return tlv{tag: tag, full: b[:end], content: b[hdr:end]}, b[end:], nil
}

// children reads up to len(out) elements from b into out. whole reports whether they were
// all of b: false when b holds more, or an element is damaged or of indefinite length (its
// end is unknown, so it is the last one read).
func children(b []byte, out []tlv) (n int, whole bool) {
	for n < len(out) && len(b) > 0 {
		e, rest, err := readTLV(b)
		if err != nil {
			return n, false
		}
		out[n] = e
		n++
		if e.indefinite {
			return n, false
		}
		b = rest
	}
	return n, len(b) == 0
}

// derKind is what a DER element is, judged by its shape.
type derKind int

const (
	derUnknown derKind = iota
	derCertificate
	derCSR
	derCRL
	derPKCS7     // ContentInfo with SignedData: a .p7b certificate bundle
	derPublicKey // SubjectPublicKeyInfo or PKCS#1 RSAPublicKey
	derPKCS12
	derRSAKey          // PKCS#1 RSAPrivateKey
	derDSAKey          // OpenSSL's DSA private key
	derECKey           // SEC 1 ECPrivateKey
	derPKCS8           // PKCS#8 PrivateKeyInfo / OneAsymmetricKey
	derEncryptedPKCS8  // PKCS#8 EncryptedPrivateKeyInfo
	derOpenSSHKey      // OpenSSH's binary key format
	derIndefiniteOther // BER with an indefinite length that is none of the above
)

// isKey reports whether k is private key material.
func (k derKind) isKey() bool { return k >= derPKCS12 && k <= derOpenSSHKey }

// keyNoun names key material for a message.
func (k derKind) keyNoun() string {
	switch k {
	case derPKCS12:
		return "a PKCS#12/PFX bundle (certificate with its private key)"
	case derRSAKey:
		return "an RSA private key (PKCS#1)"
	case derDSAKey:
		return "a DSA private key"
	case derECKey:
		return "an EC private key (SEC 1)"
	case derPKCS8:
		return "a private key (PKCS#8)"
	case derEncryptedPKCS8:
		return "an encrypted private key (PKCS#8)"
	case derOpenSSHKey:
		return "an OpenSSH private key"
	}
	return "a private key"
}

// classify tells what a DER element is. It looks at no more than the first few headers of
// the element and of its first children.
func classify(e tlv) derKind {
	if e.tag != tagSequence {
		return derUnknown
	}
	var buf [10]tlv
	n, whole := children(e.content, buf[:])
	ch := buf[:n]

	// PFX: SEQUENCE { INTEGER 3, ContentInfo SEQUENCE { OID data | signedData, ... }, ... }
	if n >= 2 && isInt(ch[0], 3) && ch[1].tag == tagSequence {
		if oid, ok := firstOID(ch[1]); ok && (bytes.Equal(oid, oidPKCS7Data) || bytes.Equal(oid, oidPKCS7SignedData)) {
			return derPKCS12
		}
	}
	// ContentInfo: SEQUENCE { OID signedData, [0] EXPLICIT SignedData }
	if n >= 2 && ch[0].tag == tagOID && bytes.Equal(ch[0].content, oidPKCS7SignedData) && ch[1].tag == tagContext0 {
		return derPKCS7
	}
	// Certificate, CSR and CRL: SEQUENCE { SEQUENCE tbs, SEQUENCE signatureAlgorithm, BIT STRING }
	if n == 3 && whole && ch[0].tag == tagSequence && ch[1].tag == tagSequence && ch[2].tag == tagBitString {
		return classifySigned(ch[0])
	}
	// PKCS#8: SEQUENCE { INTEGER 0|1, AlgorithmIdentifier, OCTET STRING, ... }
	if n >= 3 && (isInt(ch[0], 0) || isInt(ch[0], 1)) && isAlgID(ch[1]) && ch[2].tag == tagOctetString {
		return derPKCS8
	}
	// SEC 1: SEQUENCE { INTEGER 1, OCTET STRING, [0] parameters OPTIONAL, [1] publicKey OPTIONAL }
	if n >= 2 && n <= 4 && isInt(ch[0], 1) && ch[1].tag == tagOctetString {
		return derECKey
	}
	// PKCS#1 RSAPrivateKey: version and eight INTEGERs (more with multi-prime);
	// OpenSSL's DSA key: version and five INTEGERs.
	if n >= 6 && (isInt(ch[0], 0) || isInt(ch[0], 1)) && allInts(ch[:6]) {
		switch {
		case n >= 9 && allInts(ch[:9]):
			return derRSAKey
		case n == 6 && whole:
			return derDSAKey
		}
	}
	if n == 2 && whole {
		switch {
		// EncryptedPrivateKeyInfo: SEQUENCE { AlgorithmIdentifier, OCTET STRING }
		case isAlgID(ch[0]) && ch[1].tag == tagOctetString:
			return derEncryptedPKCS8
		// SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }
		case isAlgID(ch[0]) && ch[1].tag == tagBitString:
			return derPublicKey
		// RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }
		case ch[0].tag == tagInteger && ch[1].tag == tagInteger:
			return derPublicKey
		}
	}
	if e.indefinite {
		return derIndefiniteOther
	}
	return derUnknown
}

// classifySigned tells a certificate from a CSR and a CRL by the start of the signed part:
//
//	certificate  [0] version, INTEGER serial, ...  (v1: INTEGER, SEQ, SEQ, SEQ validity, ...)
//	CSR          INTEGER 0, SEQ subject, SEQ spki, [0] attributes
//	CRL          [INTEGER 1,] SEQ algorithm, SEQ issuer, Time thisUpdate, ...
//
// Anything else of this outer shape counts as a (damaged) certificate.
func classifySigned(tbs tlv) derKind {
	var buf [4]tlv
	n, _ := children(tbs.content, buf[:])
	t := buf[:n]
	switch {
	case n > 0 && t[0].tag == tagContext0:
		return derCertificate
	case n >= 3 && isTime(t[2].tag), n >= 4 && isTime(t[3].tag):
		return derCRL
	case n >= 4 && t[0].tag == tagInteger && t[3].tag == tagContext0:
		return derCSR
	}
	return derCertificate
}

// pkcs7Certificates returns the certificates of a PKCS#7 SignedData bundle (ContentInfo
// element e): SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo,
// certificates [0] IMPLICIT OPTIONAL, crls [1] IMPLICIT OPTIONAL, signerInfos SET }.
// other counts certificate choices that are not X.509 certificates (attribute certificates).
func pkcs7Certificates(e tlv) (certs [][]byte, other int, err error) {
	var ci [2]tlv
	if n, _ := children(e.content, ci[:]); n < 2 {
		return nil, 0, errDERTruncated
	}
	sd, _, err := readTLV(ci[1].content)
	if err != nil {
		return nil, 0, err
	}
	if sd.indefinite || sd.tag != tagSequence {
		return nil, 0, errDERLength
	}
	var f [6]tlv
	n, _ := children(sd.content, f[:])
	if n < 4 || f[0].tag != tagInteger || f[1].tag != tagSet || f[2].tag != tagSequence {
		return nil, 0, errDERTruncated
	}
	if f[3].tag != tagContext0 {
		return nil, 0, nil // no certificates field
	}
	if f[3].indefinite {
		return nil, 0, errDERLength
	}
	for b := f[3].content; len(b) > 0; {
		c, rest, err := readTLV(b)
		if err != nil {
			return certs, other, err
		}
		if c.indefinite {
			return certs, other, errDERLength
		}
		if c.tag == tagSequence {
			certs = append(certs, c.full)
		} else {
			other++
		}
		b = rest
	}
	return certs, other, nil
}

// isInt reports whether e is an INTEGER holding the small value v.
func isInt(e tlv, v byte) bool {
	return e.tag == tagInteger && len(e.content) == 1 && e.content[0] == v
}

func allInts(es []tlv) bool {
	for _, e := range es {
		if e.tag != tagInteger {
			return false
		}
	}
	return true
}

// isAlgID reports whether e looks like an AlgorithmIdentifier: SEQUENCE { OID, ... }.
func isAlgID(e tlv) bool {
	_, ok := firstOID(e)
	return e.tag == tagSequence && ok
}

// firstOID returns the content of e's first child when that child is an OID.
func firstOID(e tlv) ([]byte, bool) {
	c, _, err := readTLV(e.content)
	if err != nil || c.tag != tagOID || len(c.content) == 0 {
		return nil, false
	}
	return c.content, true
}

func isTime(tag byte) bool { return tag == tagUTCTime || tag == tagGenTime }
