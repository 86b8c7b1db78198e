#!/usr/bin/env bash
# msi-version.sh VERSION prints the MSI ProductVersion of a build: three numbers, which is all
# Windows Installer compares (a fourth is ignored), ordered as the builds are.
#
#   v1.2.3                 1.2.3000   a release
#   v1.2.3-5-gabc1234      1.2.3005   5 commits after it (what `git describe --tags` says)
#   v1.2.3-5-gabc1234-dirty 1.2.3005  a dirty tree shares its commit's version
#   v1.3.0-rc.1[-N-g...]   the last release before it, with its commit count: a pre-release
#                          comes before the release it leads to
#   anything else          0.0.N, N the number of commits (no release tag yet)
#
# The third number is PATCH*1000 + commits since the release (at most 999; Windows Installer
# takes up to 65535, so PATCH up to 64). `msi-version.sh --test` checks the table above.
set -euo pipefail

map() {
	local v=${1#v} x y z n=0
	if [[ $v =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)(-([0-9]+)-g[0-9a-f]+)?(-dirty)?$ ]]; then
		x=${BASH_REMATCH[1]} y=${BASH_REMATCH[2]} z=${BASH_REMATCH[3]} n=${BASH_REMATCH[5]:-0}
	elif [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+- ]] && rel=$(git describe --tags --long --match 'v[0-9]*.[0-9]*.[0-9]*' --exclude 'v*-*' 2>/dev/null); then
		map "$rel"
		return
	else
		x=0 y=0 z=0 n=$(git rev-list --count HEAD 2>/dev/null || echo 0)
		[ "${MSI_VERSION_TEST:-}" = 1 ] && n=7
	fi
	[ "$n" -gt 999 ] && n=999
	if [ "$x" -gt 255 ] || [ "$y" -gt 255 ] || [ "$z" -gt 64 ]; then
		echo "msi-version.sh: $1 does not fit an MSI version (major, minor <= 255, patch <= 64)" >&2
		exit 1
	fi
	echo "$x.$y.$((z * 1000 + n))"
}

if [ "${1:-}" = --test ]; then
	fail=0
	while read -r in want; do
		got=$(MSI_VERSION_TEST=1 map "$in")
		if [ "$got" != "$want" ]; then echo "msi-version.sh $in = $got, want $want" >&2; fail=1; fi
	done <<'TABLE'
v1.2.3 1.2.3000
1.2.3 1.2.3000
v1.2.3-5-gabc1234 1.2.3005
v1.2.3-5-gabc1234-dirty 1.2.3005
v0.9.0-1234-gabc1234 0.9.999
v2.0.0 2.0.0
b121208-dirty 0.0.7
TABLE
	[ "$fail" = 0 ] && echo "msi-version.sh: ok"
	exit "$fail"
fi
[ $# -eq 1 ] || { echo "usage: $0 VERSION | --test" >&2; exit 2; }
map "$1"
