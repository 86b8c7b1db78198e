#!/usr/bin/env bash
# prefix.sh DIR makes DIR a fresh win64 Wine prefix that runs Go programs: the recipe of the
# team's Wine notes (../README.md). scripts/wine-test.sh and the service and MSI tests
# (internal/winsvc) use it; they cache the result and copy it (under a second) rather than
# make it again (about 20 s).
#
#   - wineboot --init, then wineserver -w: a service manager of the dying first session would
#     answer StartService with 1060;
#   - bcryptprimitives.dll with ProcessPrng (bcryptprimitives.c), which Go >= 1.22 needs and
#     Wine 8.0 lacks;
#   - %TEMP% and %TMP% = C:\certagent\tmp (Wine takes them from HKCU\Environment, not from
#     the Unix environment).
#
# Needs wine64 (/usr/lib/wine/wine64), wineserver and x86_64-w64-mingw32-gcc. Output goes
# to standard error; exit status 0 when the prefix is ready.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

wine64=
for c in /usr/lib/wine/wine64 "$(command -v wine64 || true)"; do
	if [ -n "$c" ] && [ -x "$c" ]; then wine64=$c; break; fi
done
wineserver=
for c in "$(command -v wineserver || true)" /usr/lib/wine/wineserver; do
	if [ -n "$c" ] && [ -x "$c" ]; then wineserver=$c; break; fi
done
cc=$(command -v x86_64-w64-mingw32-gcc || true)
if [ -z "$wine64" ] || [ -z "$wineserver" ] || [ -z "$cc" ]; then
	echo "prefix.sh: needs wine64, wineserver and x86_64-w64-mingw32-gcc:" >&2
	echo "  apt-get install -y --no-install-recommends wine64 wine gcc-mingw-w64-x86-64" >&2
	exit 2
fi

rm -rf "$dir"
mkdir -p "$dir"
export WINEPREFIX=$dir WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
# wineboot complains about syswow64\rundll32.exe without wine32: harmless for win64.
"$wine64" wineboot --init >&2 || { echo "prefix.sh: wineboot --init failed" >&2; exit 1; }
"$wineserver" -w
for v in TEMP TMP; do
	"$wine64" reg add 'HKCU\Environment' /v "$v" /t REG_SZ /d 'C:\certagent\tmp' /f >&2 ||
		{ echo "prefix.sh: setting %$v% failed" >&2; exit 1; }
done
"$wineserver" -w
mkdir -p "$dir/drive_c/certagent/tmp" # msiexec copies the package there, and fails without it
"$cc" -shared -O2 -s -nostdlib -Wl,--entry,DllMain -o "$dir/drive_c/windows/system32/bcryptprimitives.dll" \
	"$here/bcryptprimitives.c" -ladvapi32 >&2 || { echo "prefix.sh: building the ProcessPrng shim failed" >&2; exit 1; }
