#!/bin/sh
# generate.sh recreates the OpenSSL-made fixtures in this directory: real PKCS#12, PKCS#7,
# TRUSTED CERTIFICATE and "Bag Attributes" files, a CSR, and certificates with key types Go
# does not take (DSA, Ed448, RSA-PSS, ECDSA). Private keys stay in a temporary directory and
# are deleted; the PKCS#12 files hold a throwaway key encrypted under the password "test".
#
# Certificates are valid for ten years from the day this runs; the tests judge them at a fixed
# time in 2026 and accept a notBefore in the future, so regenerating later keeps them passing.
#
# Usage: sh generate.sh   (needs OpenSSL 3)
set -eu
out=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; }

# The leaf, issued by a CA, and the CA.
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
	-subj "/CN=Fixture Issuing CA/O=Contoso" -addext "basicConstraints=critical,CA:true"
q openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=fixture leaf/O=Contoso"
q openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -out leaf.pem
cp leaf.pem "$out/leaf.pem"
q openssl x509 -in leaf.pem -outform DER -out "$out/leaf.der"

# PKCS#12: OpenSSL 3's default (PBES2/AES) and the legacy RC2/3DES form Windows used to write.
q openssl pkcs12 -export -in leaf.pem -inkey leaf.key -certfile ca.pem -out "$out/pkcs12-aes.der" -passout pass:test
q openssl pkcs12 -export -legacy -in leaf.pem -inkey leaf.key -out "$out/pkcs12-legacy.der" -passout pass:test

# PKCS#7 (.p7b): the leaf alone, and the leaf with its CA.
q openssl crl2pkcs7 -nocrl -certfile leaf.pem -outform DER -out "$out/p7b-one.der"
q openssl crl2pkcs7 -nocrl -certfile leaf.pem -out "$out/p7b-one.pem"
cat leaf.pem ca.pem >chain.pem
q openssl crl2pkcs7 -nocrl -certfile chain.pem -outform DER -out "$out/p7b-chain.der"

# OpenSSL's TRUSTED CERTIFICATE (the certificate followed by its trust settings).
q openssl x509 -in leaf.pem -trustout -addtrust clientAuth -setalias "fixture alias" -out "$out/trusted.pem"

# What "openssl pkcs12 -nokeys" prints: Bag Attributes, subject= and issuer= lines around
# the certificate.
q openssl pkcs12 -in "$out/pkcs12-legacy.der" -nokeys -passin pass:test -legacy -out "$out/bag-attributes.pem"

# A CSR, as PEM and DER.
cp leaf.csr "$out/csr.pem"
q openssl req -in leaf.csr -outform DER -out "$out/csr.der"

# Certificates whose keys Entra ID does not take.
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout ec.key -out "$out/ecdsa-p384.pem" -days 3650 -subj "/CN=fixture ecdsa"
q openssl dsaparam -out dsa.param 2048
q openssl req -x509 -newkey dsa:dsa.param -nodes -keyout dsa.key -out "$out/dsa.pem" -days 3650 -subj "/CN=fixture dsa"
q openssl req -x509 -newkey ed448 -nodes -keyout ed448.key -out "$out/ed448.pem" -days 3650 -subj "/CN=fixture ed448"
q openssl genpkey -algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048 -out pss.key
q openssl req -x509 -key pss.key -out "$out/rsa-pss.pem" -days 3650 -subj "/CN=fixture rsa-pss"
echo "fixtures written to $out"
