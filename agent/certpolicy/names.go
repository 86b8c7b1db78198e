package certpolicy

import (
	"path/filepath"
	"strings"
)

// NameKind says what the drop folder does with a file, judged by its name alone
// (docs/contract.md, "Drop folder").
type NameKind int

const (
	// NameCertificate: .cer .crt .pem .der: read and checked by the policy.
	NameCertificate NameKind = iota
	// NamePrivateKey: .pfx .p12 .key: refused as contains_private_key without being read.
	NamePrivateKey
	// NameTemporary: a copy in progress (.tmp .part .partial .crdownload, or a name starting
	// with "." or "~$"): left alone while it exists.
	NameTemporary
	// NameUnsupported: any other extension: refused as unsupported_file without being read.
	NameUnsupported
	// NameSignature: .sig, the provider's detached signature of the certificate file named
	// like it without .sig (provider.cer.sig signs provider.cer): read and filed with that
	// file.
	NameSignature
)

// SignatureSuffix ends a signature file's name: the certificate's name and ".sig".
const SignatureSuffix = ".sig"

// ClassifyName judges a drop-folder file by its base name. Extensions are case-insensitive.
func ClassifyName(name string) NameKind {
	base := filepath.Base(name)
	lower := strings.ToLower(base)
	if strings.HasPrefix(base, ".") || strings.HasPrefix(base, "~$") {
		return NameTemporary
	}
	switch filepath.Ext(lower) {
	case ".tmp", ".part", ".partial", ".crdownload":
		return NameTemporary
	case ".cer", ".crt", ".pem", ".der":
		return NameCertificate
	case ".pfx", ".p12", ".key":
		return NamePrivateKey
	case SignatureSuffix:
		return NameSignature
	}
	return NameUnsupported
}
