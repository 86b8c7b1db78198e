#!/usr/bin/env bash
# build-msi.sh builds certagent's MSI with Debian's wixl (`make msi` calls it):
#
#   build-msi.sh --exe certagent.exe --module dist/CertAgent --version 1.2.3000 \
#                --module-version 1.2.3 --out dist/certagent-1.2.3000-x64.msi \
#                [--sign-pfx FILE [--sign-pass PASS] [--sign-timestamp URL]]
#
# It stages the files beside a copy of certagent.wxs (wixl wants File/@Source relative to the
# .wxs), lists the PowerShell module's files with wixl-heat, builds with -a x64, adds with
# msibuild the tables wixl cannot write, and checks the result with msiinfo: wixl can exit 0
# on a broken MSI. With --sign-pfx it signs certagent.exe before packaging it and the MSI
# after, with osslsigncode (Authenticode, SHA-256).
#
# Needs: wixl, wixl-heat, msibuild, msiinfo (Debian: msitools wixl), and osslsigncode to sign.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exe= module= version= modver= out= pfx= pass= tsurl=
while [ $# -gt 0 ]; do
	case $1 in
	--exe) exe=$2 ;;
	--module) module=$2 ;;
	--version) version=$2 ;;
	--module-version) modver=$2 ;;
	--out) out=$2 ;;
	--sign-pfx) pfx=$2 ;;
	--sign-pass) pass=$2 ;;
	--sign-timestamp) tsurl=$2 ;;
	*) echo "build-msi.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift 2
done
for v in exe module version modver out; do
	[ -n "${!v}" ] || { echo "build-msi.sh: --${v/modver/module-version} is required" >&2; exit 2; }
done
for t in wixl wixl-heat msibuild msiinfo; do
	command -v "$t" >/dev/null || { echo "build-msi.sh: $t is missing: apt-get install -y msitools wixl" >&2; exit 2; }
done
if [ -n "$pfx" ]; then
	command -v osslsigncode >/dev/null || { echo "build-msi.sh: osslsigncode is missing: apt-get install -y osslsigncode" >&2; exit 2; }
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/certagent-msi.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$here/certagent.wxs" "$stage/"
cp "$here/../../configs/certagent.example.yaml" "$stage/"
cp -R "$module" "$stage/CertAgent"

sign() { # sign IN OUT
	local args=(sign -pkcs12 "$pfx" -h sha256 -n "Certificate Agent for Microsoft 365 Backup" -i https://github.com/aucloud/certagent)
	[ -n "$pass" ] && args+=(-pass "$pass")
	[ -n "$tsurl" ] && args+=(-ts "$tsurl")
	osslsigncode "${args[@]}" -in "$1" -out "$2" >/dev/null
}
if [ -n "$pfx" ]; then
	sign "$exe" "$stage/certagent.exe"
else
	cp "$exe" "$stage/certagent.exe"
fi

(cd "$stage" && find CertAgent -type f | sort |
	wixl-heat -p CertAgent/ --directory-ref PSMODULEDIR --component-group PSModule --var var.ModuleDir --win64 >module.wxs)
# wixl prints GLib warnings for attributes it ignores; errors fail the build.
(cd "$stage" && wixl -a x64 -D Version="$version" -D ModuleVersion="$modver" -D ModuleDir=CertAgent -D Win64=yes \
	-o certagent.msi certagent.wxs module.wxs 2> >(grep -v 'GLib-GObject-WARNING\|^$' >&2))

msi=$stage/certagent.msi
q() { msibuild "$msi" -q "$1"; }
# The service's delayed automatic start (3), recovery actions on non-crash failures (4) and
# unrestricted service SID (5), at install and reinstall (Event 1+4), applied by
# MsiConfigureServices between InstallServices (5800) and StartServices (5900); the recovery
# actions restart after 5 s, 10 s and 60 s, counted afresh after a day (daemon.Recovery).
q 'CREATE TABLE `MsiServiceConfig` (`MsiServiceConfig` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, `Event` SHORT NOT NULL, `ConfigType` LONG NOT NULL, `Argument` CHAR(0) LOCALIZABLE, `Component_` CHAR(72) NOT NULL PRIMARY KEY `MsiServiceConfig`)'
q "INSERT INTO \`MsiServiceConfig\` (\`MsiServiceConfig\`, \`Name\`, \`Event\`, \`ConfigType\`, \`Argument\`, \`Component_\`) VALUES ('DelayedAutoStart', 'CertAgent', 5, 3, '1', 'Service')"
q "INSERT INTO \`MsiServiceConfig\` (\`MsiServiceConfig\`, \`Name\`, \`Event\`, \`ConfigType\`, \`Argument\`, \`Component_\`) VALUES ('FailureActionsOnNonCrash', 'CertAgent', 5, 4, '1', 'Service')"
q "INSERT INTO \`MsiServiceConfig\` (\`MsiServiceConfig\`, \`Name\`, \`Event\`, \`ConfigType\`, \`Argument\`, \`Component_\`) VALUES ('ServiceSidUnrestricted', 'CertAgent', 5, 5, '1', 'Service')"
q 'CREATE TABLE `MsiServiceConfigFailureActions` (`MsiServiceConfigFailureActions` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, `Event` SHORT NOT NULL, `ResetPeriod` LONG, `RebootMessage` CHAR(0) LOCALIZABLE, `Command` CHAR(0) LOCALIZABLE, `Actions` CHAR(0), `DelayActions` CHAR(0), `Component_` CHAR(72) NOT NULL PRIMARY KEY `MsiServiceConfigFailureActions`)'
q "INSERT INTO \`MsiServiceConfigFailureActions\` (\`MsiServiceConfigFailureActions\`, \`Name\`, \`Event\`, \`ResetPeriod\`, \`Actions\`, \`DelayActions\`, \`Component_\`) VALUES ('Recovery', 'CertAgent', 5, 86400, '1[~]1[~]1', '5000[~]10000[~]60000', 'Service')"
q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Condition\`, \`Sequence\`) VALUES ('MsiConfigureServices', 'VersionNT >= 600', 5850)"
# Public properties pass from the UI to the elevated install only when secure; wixl ignores
# Property/@Secure.
secure='WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED;TENANTID;CLIENTID;TARGETAPPID;DROPFOLDER;APPROVAL;APIPORT;WEBHOOKURL;CLOUD;AUTHORITYHOST;GRAPHURL;CAFILE;CONFIGFILE'
q "UPDATE \`Property\` SET \`Value\` = '$secure' WHERE \`Property\` = 'SecureCustomProperties'"

# The tables are the proof.
check() { # check TABLE TEXT
	local t
	t=$(msiinfo export "$msi" "$1")
	grep -qF -- "$2" <<<"$t" || { echo "build-msi.sh: table $1 lacks $2" >&2; exit 1; }
}
check File certagent.exe
check ServiceInstall 'run --service -c "[CONFIGFILE]"'
check ServiceControl CertAgentServiceControl
check MsiServiceConfigFailureActions '5000[~]10000[~]60000'
check Property "$secure"
check InstallExecuteSequence $'RemoveExistingProducts\t\t1401'
check InstallExecuteSequence $'MsiConfigureServices\tVersionNT >= 600\t5850'
check Property $'ProductVersion\t'"$version"

mkdir -p "$(dirname "$out")"
if [ -n "$pfx" ]; then
	sign "$msi" "$out"
else
	cp "$msi" "$out"
fi
echo "$out"
