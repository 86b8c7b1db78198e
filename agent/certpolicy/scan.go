package certpolicy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// scan collects what one input holds: certificates, key material, damage and other things.
// It reads the input once, front to back, without regular expressions. Everything it decodes
// goes into buffers it owns, which wipe clears.
type scan struct {
	certs  []certRef
	bundle bool // some certificate came from a PKCS#7 bundle

	key      string // noun phrase for the first key material found, "" when none
	keyWhere string // where it was found (", base64-encoded", " in PEM block 2 (CERTIFICATE)")

	bad  string // damage that stops an otherwise good input from being accepted: a full message
	note string // what else a structure held, for when no certificate is found: a full message
	weak string // what unstructured text held (loose base64 that decodes to nothing useful)

	binary bool // the input is not text

	// scratch holds every decoded byte; wipe clears it. Its size is fixed up front so that it
	// never moves (a moved buffer would leave a copy of key material behind).
	scratch []byte
	used    int
	other   [][]byte // buffers that also need clearing (UTF-16 conversion, overflow)
}

// certRef is a certificate-shaped DER element and where it was found.
type certRef struct {
	der []byte
	src source
}

// srcKind says where bytes being judged came from.
type srcKind int

const (
	srcDER    srcKind = iota // the raw input
	srcPEM                   // the body of a PEM block
	srcBase64                // base64 text without PEM armour
)

type source struct {
	kind  srcKind
	block int    // PEM block number, from 1
	label string // PEM type, safe to print
	// strict: damage here stops the input from being accepted (the raw input, and PEM blocks
	// labelled as certificates). Loose base64 and other PEM blocks only explain a failure.
	strict bool
	// trusted: an OpenSSL "TRUSTED CERTIFICATE" block: one auxiliary element follows the
	// certificate.
	trusted bool
}

// where tells, for a key message, where material was found.
func (s source) where() string {
	switch s.kind {
	case srcPEM:
		return fmt.Sprintf(" in PEM block %d (%s)", s.block, s.label)
	case srcBase64:
		return ", base64-encoded"
	}
	return ""
}

// holds renders "this source holds noun".
func (s source) holds(noun string) string {
	switch s.kind {
	case srcPEM:
		return fmt.Sprintf("PEM block %d (%s) holds %s", s.block, s.label, noun)
	case srcBase64:
		return "holds base64 text that decodes to " + noun
	}
	return "holds " + noun
}

func (s *scan) addKey(noun string, src source) {
	if s.key == "" {
		s.key, s.keyWhere = noun, src.where()
	}
}

// problem records something that is not a certificate: damage when src is strict, otherwise a
// note that explains a rejection only if nothing better is found.
func (s *scan) problem(src source, msg string) {
	switch {
	case src.strict:
		if s.bad == "" {
			s.bad = msg
		}
	case src.kind == srcBase64:
		if s.weak == "" {
			s.weak = msg
		}
	default:
		if s.note == "" {
			s.note = msg
		}
	}
}

// notice records a non-certificate structure (a CSR, a public key...): never damage, since
// the STYLE is to skip blocks that are not certificates, but the best explanation when the
// input holds nothing else.
func (s *scan) notice(msg string) {
	if s.note == "" {
		s.note = msg
	}
}

// decode decodes the base64 in text into scratch space and returns the bytes, or bad >= 0
// when text is not base64. whole is the input: the scratch buffer gets its size, which is
// enough for every region of it since base64 decodes to fewer bytes than its text.
func (s *scan) decode(text, whole []byte) (out []byte, bad int) {
	need := len(text)*3/4 + 3
	if s.scratch == nil {
		s.scratch = make([]byte, max(len(whole), need))
	}
	dst := s.scratch[s.used:]
	fromScratch := len(dst) >= need
	if !fromScratch {
		dst = make([]byte, need) // should not happen; a separate buffer is cleared too
		s.other = append(s.other, dst)
	}
	// The standard decoder is faster and skips line breaks; it fails on what this package
	// also takes (spaces, tabs, missing padding), and then the lenient decoder runs. Either
	// writes only into dst, which wipe clears in full.
	n, err := base64.StdEncoding.Decode(dst, text)
	bad = -1
	if err != nil {
		n, bad = decodeBase64(dst, text)
	}
	if bad >= 0 {
		clear(dst[:n])
		return nil, bad
	}
	if fromScratch {
		s.used += n
	}
	return dst[:n:n], -1
}

// wipe zeroes every buffer the scan decoded into: they may hold private key material.
func (s *scan) wipe() {
	clear(s.scratch)
	for _, b := range s.other {
		clear(b)
	}
}

// input judges the whole input.
func (s *scan) input(data []byte) {
	if u, ok := fromUTF16(data); ok {
		s.other = append(s.other, u)
		data = u
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	s.keyMarkers(data)
	s.binary = !isText(data)
	if s.binary {
		// DER, possibly after stray line breaks.
		if b := bytes.TrimLeft(data, " \t\r\n"); len(b) > 0 && (b[0] == tagSequence || bytes.HasPrefix(b, opensshMagic)) {
			s.der(b, source{kind: srcDER, strict: true}, data)
			return
		}
	}
	s.text(data, data)
}

var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// fromUTF16 converts text that starts with a UTF-16 byte order mark to UTF-8: Windows
// PowerShell 5.1 writes UTF-16 by default ("Out-File", ">"), so a pasted PEM arrives that way.
func fromUTF16(b []byte) ([]byte, bool) {
	var big bool
	switch {
	case len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe:
	case len(b) >= 2 && b[0] == 0xfe && b[1] == 0xff:
		big = true
	default:
		return nil, false
	}
	b = b[2:]
	out := make([]byte, 0, len(b)/2*3+utf8.UTFMax)
	for i := 0; i+1 < len(b); i += 2 {
		r := rune(b[i]) | rune(b[i+1])<<8
		if big {
			r = rune(b[i])<<8 | rune(b[i+1])
		}
		if utf16.IsSurrogate(r) && i+3 < len(b) {
			r2 := rune(b[i+2]) | rune(b[i+3])<<8
			if big {
				r2 = rune(b[i+2])<<8 | rune(b[i+3])
			}
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				r = d
				i += 2
			}
		}
		out = utf8.AppendRune(out, r)
	}
	return out, true
}

// isText reports whether b looks like text: no control bytes other than whitespace in its
// first 64 bytes. DER always has some there (tags and lengths such as 0x02 0x01).
func isText(b []byte) bool {
	for _, c := range b[:min(len(b), 64)] {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' || c == 0x7f {
			return false
		}
	}
	return true
}

// Armour markers.
var (
	beginMarker   = []byte("-----BEGIN ")
	endMarker     = []byte("-----END ")
	dashes        = []byte("-----")
	privateKeyTag = []byte("PRIVATE KEY")
	puttyMarker   = []byte("PuTTY-User-Key-File-")
)

// keyMarkers finds armoured key material anywhere in b, without decoding it: a BEGIN or END
// line of any "... PRIVATE KEY" type (PEM, OpenSSH, PGP's "PRIVATE KEY BLOCK", SSH2's
// "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----"), wherever it sits on its line, and PuTTY key
// files.
func (s *scan) keyMarkers(b []byte) {
	for off := 0; ; {
		i := bytes.Index(b[off:], privateKeyTag)
		if i < 0 {
			break
		}
		at := off + i
		off = at + len(privateKeyTag)
		if typ, ok := armourBefore(b, at); ok {
			typ = append(typ[:len(typ):len(typ)], privateKeyTag...)
			s.addKey(fmt.Sprintf("a private key (%q block)", printableLabel(typ)), source{kind: srcDER})
			return
		}
	}
	for off := 0; ; {
		i := bytes.Index(b[off:], puttyMarker)
		if i < 0 {
			return
		}
		at := off + i
		if at == 0 || b[at-1] == '\n' || b[at-1] == '\r' {
			s.addKey("a PuTTY private key", source{kind: srcDER})
			return
		}
		off = at + len(puttyMarker)
	}
}

// armourBefore reports whether the text just before b[at], on the same line, is the start
// of an armour line: "----" (or more dashes, maybe a space), "BEGIN " or "END ", then the
// start of the type, which it returns. It looks back no more than 128 bytes (types are
// short), which keeps the scan linear on input full of "PRIVATE KEY".
func armourBefore(b []byte, at int) (typ []byte, ok bool) {
	w := b[max(0, at-128):at]
	if i := bytes.LastIndexAny(w, "\r\n"); i >= 0 {
		w = w[i+1:]
	}
	for _, kw := range [][]byte{[]byte("BEGIN "), []byte("END ")} {
		i := bytes.LastIndex(w, kw)
		if i < 0 {
			continue
		}
		if lead := bytes.TrimSuffix(w[:i], []byte(" ")); bytes.HasSuffix(lead, []byte("----")) {
			return w[i+len(kw):], true
		}
	}
	return nil, false
}

// lineEnd returns the index of the line break at or after i, or len(b).
func lineEnd(b []byte, i int) int {
	for i < len(b) && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// printableLabel returns a PEM type fit to print. Input bytes are echoed only when they look
// like a PEM type: up to 40 characters, words of capitals and digits of up to 16 characters
// (so that a label can never carry a run of base64 worth hiding anything in).
func printableLabel(typ []byte) string {
	const unusual = "unusual type"
	typ = bytes.TrimSpace(typ)
	if len(typ) == 0 || len(typ) > 40 {
		return unusual
	}
	word := 0
	for _, c := range typ {
		switch {
		case c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			if word++; word > 16 {
				return unusual
			}
		case c == ' ' || c == '#' || c == '-' || c == '.':
			word = 0
		default:
			return unusual
		}
	}
	return string(typ)
}

// finder finds a marker repeatedly in b, remembering the last answer so that searching from
// increasing positions stays linear even when the marker is absent.
type finder struct {
	b, sep []byte
	at     int // last match, or -1 when there is none at or after from
	from   int
	done   bool
}

func (f *finder) next(pos int) int {
	if f.done && pos >= f.from && (f.at < 0 || f.at >= pos) {
		return f.at
	}
	f.from, f.done = pos, true
	if i := bytes.Index(f.b[pos:], f.sep); i >= 0 {
		f.at = pos + i
	} else {
		f.at = -1
	}
	return f.at
}

// text judges text: PEM blocks, and base64 without armour (the whole text, or runs of
// base64 lines around PEM blocks). whole is the input, for sizing the scratch buffer.
func (s *scan) text(t, whole []byte) {
	begins := finder{b: t, sep: beginMarker}
	ends := finder{b: t, sep: endMarker}
	pos, blocks := 0, 0
	for pos < len(t) {
		start := begins.next(pos)
		if start < 0 {
			break
		}
		s.loose(t[pos:start], whole)
		typStart := start + len(beginMarker)
		typ, le, ok := armorType(t, typStart)
		if !ok {
			s.notice("holds a PEM BEGIN line that is not well formed")
			pos = typStart
			continue
		}
		blocks++
		src := blockSource(blocks, typ)
		end, next := ends.next(le), begins.next(le)
		if end < 0 || next >= 0 && next < end {
			s.blockProblem(src, "has no END line")
			if next < 0 {
				return
			}
			pos = next
			continue
		}
		etyp, ele, ok := armorType(t, end+len(endMarker))
		pos = ele
		if !ok || !bytes.Equal(etyp, typ) {
			s.blockProblem(src, "ends with an END line of another type")
			continue
		}
		s.block(t[le:end], src, typ, whole)
	}
	s.loose(t[pos:], whole)
}

// armorType parses the rest of a BEGIN or END line from t[i] (just after "BEGIN "): the type
// up to "-----", then only dashes and spaces before the line break. It returns the type and
// the index of the line break. It looks no more than 128 bytes ahead (types are short), so
// that malformed input cannot make the scan quadratic.
func armorType(t []byte, i int) (typ []byte, next int, ok bool) {
	w := t[i:min(len(t), i+128)]
	j := bytes.Index(w, dashes)
	if j <= 0 || bytes.ContainsAny(w[:j], "\r\n") {
		return nil, i, false
	}
	k := i + j + len(dashes)
	for k < len(t) && (t[k] == '-' || t[k] == ' ' || t[k] == '\t') {
		k++
	}
	if k < len(t) && t[k] != '\n' && t[k] != '\r' {
		return nil, i, false
	}
	return w[:j], k, true
}

// PEM types of certificates: OpenSSL writes "TRUSTED CERTIFICATE" (the certificate followed by
// its trust settings) and very old tools "X509 CERTIFICATE".
const (
	typeCertificate        = "CERTIFICATE"
	typeX509Certificate    = "X509 CERTIFICATE"
	typeTrustedCertificate = "TRUSTED CERTIFICATE"
)

func blockSource(n int, typ []byte) source {
	src := source{kind: srcPEM, block: n, label: printableLabel(typ)}
	switch string(typ) {
	case typeCertificate, typeX509Certificate, typeTrustedCertificate, "PKCS7", "CMS", "PKCS #7 SIGNED DATA":
		src.strict = true
		src.trusted = string(typ) == typeTrustedCertificate
	}
	return src
}

func (s *scan) blockProblem(src source, what string) {
	s.problem(src, fmt.Sprintf("PEM block %d (%s) %s", src.block, src.label, what))
}

// block judges the body of one PEM block.
func (s *scan) block(body []byte, src source, typ, whole []byte) {
	if bytes.HasSuffix(typ, privateKeyTag) {
		// Found by keyMarkers already. Never decode a key.
		return
	}
	out, bad := s.decode(skipHeaders(body), whole)
	switch {
	case bad >= 0:
		s.blockProblem(src, "is damaged: its base64 does not decode")
	case len(out) == 0:
		s.blockProblem(src, "is empty")
	default:
		s.der(out, src, whole)
	}
}

// skipHeaders drops RFC 1421 headers ("Proc-Type: ...") from the start of a PEM body.
func skipHeaders(body []byte) []byte {
	if bytes.IndexByte(body, ':') < 0 {
		return body
	}
	rest := body
	for {
		rest = bytes.TrimLeft(rest, "\r\n")
		le := lineEnd(rest, 0)
		if bytes.IndexByte(rest[:le], ':') < 0 {
			return rest
		}
		rest = rest[le:]
	}
}

// loose looks for base64 without armour: runs of lines made only of base64 characters. Runs
// that decode to a certificate or key count; others only explain a rejection.
func (s *scan) loose(seg, whole []byte) {
	runStart, runChars := -1, 0
	flush := func(end int) {
		if runStart >= 0 && runChars >= 16 {
			s.base64Run(seg[runStart:end], whole)
		}
		runStart, runChars = -1, 0
	}
	for i := 0; i < len(seg); {
		le := lineEnd(seg, i)
		switch n := base64Line(seg[i:le]); {
		case n > 0:
			if runStart < 0 {
				runStart = i
			}
			runChars += n
			if bytes.HasSuffix(bytes.TrimRight(seg[i:le], " \t\f\v"), []byte("=")) {
				flush(le) // padding ends a blob: what follows is another one
			}
		default: // a blank line or text
			flush(i)
		}
		i = le
		for i < len(seg) && (seg[i] == '\n' || seg[i] == '\r') {
			i++
		}
	}
	flush(len(seg))
}

// base64Line returns how many base64 characters line holds: 0 for a blank line, -1 when it
// holds anything other than base64 and surrounding spaces.
func base64Line(line []byte) int {
	line = bytes.Trim(line, " \t\f\v")
	for _, c := range line {
		if v := b64[c]; v >= 64 && v != b64Pad {
			return -1
		}
	}
	return len(line)
}

func (s *scan) base64Run(run, whole []byte) {
	d, bad := s.decode(run, whole)
	if bad >= 0 || len(d) == 0 {
		if s.weak == "" {
			s.weak = "holds text that looks like base64 but does not decode"
		}
		return
	}
	if d[0] != tagSequence && !bytes.HasPrefix(d, opensshMagic) {
		if s.weak == "" {
			s.weak = "holds base64 text that does not decode to DER"
		}
		return
	}
	s.der(d, source{kind: srcBase64}, whole)
}

// der walks the DER elements of b, one after another.
func (s *scan) der(b []byte, src source, whole []byte) {
	certsBefore := len(s.certs)
	for i := 0; len(b) > 0; i++ {
		if bytes.HasPrefix(b, opensshMagic) {
			s.addKey(derOpenSSHKey.keyNoun(), src)
			return
		}
		if b[0] != tagSequence {
			switch {
			case isBlank(b):
				// Trailing line breaks or NUL padding.
			case src.kind == srcDER && i > 0:
				// Something after binary DER, such as a PEM key appended to a DER
				// certificate: look into it for keys and certificates, and refuse it.
				what := "DER data"
				if len(s.certs) > certsBefore {
					what = "a DER certificate"
				}
				s.problem(src, fmt.Sprintf("holds %s followed by %d bytes of other data; send the certificate alone", what, len(b)))
				s.text(b, whole)
			case i == 0:
				s.problem(src, src.holds("data that is not DER"))
			default:
				s.problem(src, src.holds(fmt.Sprintf("%d bytes of data after its DER content", len(b))))
			}
			return
		}
		e, rest, err := readTLV(b)
		if err != nil {
			s.problem(src, src.holds("truncated or damaged DER data ("+err.Error()+")"))
			return
		}
		switch k := classify(e); {
		case k.isKey():
			s.addKey(k.keyNoun(), src)
		case k == derCertificate:
			s.certs = append(s.certs, certRef{der: e.full, src: src})
		case k == derPKCS7:
			ders, other, err := pkcs7Certificates(e)
			for _, d := range ders {
				if c, _, _ := readTLV(d); classify(c).isKey() {
					s.addKey(classify(c).keyNoun(), src)
					continue
				}
				s.certs = append(s.certs, certRef{der: d, src: src})
			}
			s.bundle = s.bundle || len(ders) > 0
			switch {
			case err != nil:
				s.problem(src, src.holds("a PKCS#7 bundle the agent cannot read (damaged, or in BER form); export the certificate alone as .cer"))
			case other > 0:
				s.problem(src, src.holds("a PKCS#7 bundle with certificates of a kind other than X.509"))
			case len(ders) == 0:
				s.notice(src.holds("a PKCS#7 bundle without any certificate"))
			}
		case k == derCSR:
			s.nonCert(src, i, "a certificate signing request (CSR)", "; send the certificate the CA issued for it")
		case k == derCRL:
			s.nonCert(src, i, "a certificate revocation list (CRL)", "")
		case k == derPublicKey:
			s.nonCert(src, i, "a bare public key", "; send the certificate that holds this key")
		case src.trusted && i == 1 && len(s.certs) > certsBefore:
			// The auxiliary trust settings after the certificate.
		default:
			s.problem(src, src.holds("DER data that is not a certificate"))
		}
		if e.indefinite {
			return // the end of a BER element is unknown; nothing after it is read
		}
		b = rest
	}
}

// nonCert records a structure that is not a certificate. In the raw input after a certificate
// it is damage: the file is not one certificate.
func (s *scan) nonCert(src source, i int, noun, hint string) {
	if src.kind == srcDER && i > 0 {
		s.problem(src, "holds a certificate followed by "+noun)
		return
	}
	s.notice(src.holds(noun) + ", not a certificate" + hint)
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// Base64 decoding table: values 0-63, and markers for padding, whitespace and invalid bytes.
const (
	b64Pad     = 0xfd
	b64Space   = 0xfe
	b64Invalid = 0xff
)

var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Invalid
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	t['='] = b64Pad
	for _, c := range " \t\r\n\f\v" {
		t[c] = b64Space
	}
	return t
}()

// decodeBase64 decodes standard base64 from src into dst, skipping whitespace anywhere. It
// accepts missing padding. It returns the bytes written and -1, or the offset of the first
// byte that makes src invalid. dst must hold len(src)*3/4+3 bytes.
func decodeBase64(dst, src []byte) (n, bad int) {
	var acc uint32
	k, pad := 0, 0
	for i, c := range src {
		switch v := b64[c]; {
		case v < 64:
			if pad > 0 {
				return n, i
			}
			acc = acc<<6 | uint32(v)
			if k++; k == 4 {
				dst[n], dst[n+1], dst[n+2] = byte(acc>>16), byte(acc>>8), byte(acc)
				n += 3
				acc, k = 0, 0
			}
		case v == b64Space:
		case v == b64Pad:
			// "xx==" and "xxx=" end a quantum; padding anywhere else is an error.
			if pad++; k < 2 || pad > 4-k {
				return n, i
			}
		default:
			return n, i
		}
	}
	switch k {
	case 1:
		return n, len(src)
	case 2:
		dst[n] = byte(acc >> 4)
		n++
	case 3:
		dst[n], dst[n+1] = byte(acc>>10), byte(acc>>2)
		n += 2
	}
	return n, -1
}

// sanitize makes an error text from a parser safe to show: no quoted input, no control
// characters, no more than 100 bytes.
func sanitize(s string) string {
	if i := strings.IndexAny(s, "\"'`"); i >= 0 {
		s = strings.TrimRight(s[:i], " :")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	if len(s) > 100 {
		s = s[:100]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}
