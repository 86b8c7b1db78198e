#!/usr/bin/env bash
# test-sign.sh EXE MODULE_DIR builds the MSI signed with a throwaway code-signing
# certificate (its own CA, made here with openssl) and checks both signatures with
# osslsigncode verify: the MSI's, and that of certagent.exe inside it. `make
# test-wine-service` runs it; `make msi SIGN_PFX=... SIGN_PASS=...` signs with a real one.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 EXE MODULE_DIR" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -- "$(realpath "$1")" "$(realpath "$2")"
for t in openssl osslsigncode msiextract; do
	command -v "$t" >/dev/null || { echo "test-sign.sh: $t is missing (apt-get install -y openssl osslsigncode msitools)" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/certagent-sign.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=certagent test CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout sign.key -out sign.csr -subj "/CN=certagent test signer/O=AUCloud test" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' >ext.cnf
openssl x509 -req -in sign.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out sign.pem -days 2 -extfile ext.cnf 2>/dev/null
openssl pkcs12 -export -out sign.pfx -inkey sign.key -in sign.pem -certfile ca.pem -passout pass:test-only 2>/dev/null

"$here/build-msi.sh" --exe "$1" --module "$2" --version 1.1.0 --module-version 1.1.0 --out signed.msi \
	--sign-pfx sign.pfx --sign-pass test-only >/dev/null
verify() { # verify FILE
	local out
	if ! out=$(osslsigncode verify -CAfile ca.pem -in "$1" 2>&1) || ! grep -q "Signature verification: ok" <<<"$out"; then
		echo "test-sign.sh: $1 does not verify:" >&2
		echo "$out" >&2
		exit 1
	fi
	grep -q "certagent test signer" <<<"$out" || { echo "test-sign.sh: $1 is not signed by the test signer" >&2; exit 1; }
}
verify signed.msi
mkdir x && (cd x && msiextract ../signed.msi >/dev/null)
exe=$(find x -name certagent.exe | head -n1)
[ -n "$exe" ] || { echo "test-sign.sh: no certagent.exe in the MSI" >&2; exit 1; }
verify "$exe"
# An unsigned one must not pass: the check means something.
if osslsigncode verify -CAfile ca.pem -in "$1" >/dev/null 2>&1; then
	echo "test-sign.sh: the unsigned exe verifies: the check proves nothing" >&2
	exit 1
fi
echo "test-sign.sh: the MSI and certagent.exe inside it are signed and verify (osslsigncode)"
