#!/usr/bin/env bash
# test-deb.sh DEB checks certagent's .deb (`make test-deb`): its control data and contents,
# then installs, reinstalls, removes and purges it with dpkg in a temporary root (dpkg --root,
# maintainer scripts run with DPKG_ROOT, not chrooted), so that nothing of this machine is
# touched and no running systemd is needed: the scripts must then create the user and the
# state folder, enable the unit with a link and start nothing.
set -euo pipefail
export LC_ALL=C
[ $# -eq 1 ] || { echo "usage: $0 DEB" >&2; exit 2; }
deb=$(realpath "$1")
fail() { echo "test-deb.sh: FAIL: $*" >&2; exit 1; }
for t in dpkg dpkg-deb systemd-analyze; do
	command -v "$t" >/dev/null || { echo "test-deb.sh: $t is missing (apt-get install -y dpkg systemd)" >&2; exit 2; }
done

info=$(dpkg-deb --info "$deb")
for want in "Package: certagent" "Architecture: amd64" "Section: admin" "Recommends: systemd"; do
	grep -qF " $want" <<<"$info" || fail "dpkg-deb --info lacks '$want'"
done
[ "$(dpkg-deb --field "$deb" Version)" != "" ] || fail "no Version"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
[ "$conffiles" = /etc/certagent/certagent.yaml ] || fail "conffiles = '$conffiles', want /etc/certagent/certagent.yaml"
contents=$(dpkg-deb --contents "$deb")
for want in '-rwxr-xr-x root/root .* ./usr/bin/certagent$' \
	'-rw-r--r-- root/root .* ./lib/systemd/system/certagent.service$' \
	'-rw-r----- root/root .* ./etc/certagent/certagent.yaml$' \
	'./usr/lib/sysusers.d/certagent.conf$' './usr/lib/tmpfiles.d/certagent.conf$' \
	'./usr/share/doc/certagent/certagent.example.yaml$'; do
	grep -qE -- "$want" <<<"$contents" || fail "dpkg-deb --contents lacks $want"
done

root=$(mktemp -d "${TMPDIR:-/tmp}/certagent-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" "$root/etc"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
log=$root.log
trap 'rm -rf "$root" "$log"' EXIT
dpkg_() {
	dpkg --root="$root" --force-script-chrootless --force-not-root --log=/dev/null "$@" >>"$log" 2>&1 ||
		{ cat "$log" >&2; fail "dpkg $*"; }
}

dpkg_ -i "$deb"
[ "$(dpkg --root="$root" -s certagent | sed -n 's/^Status: //p')" = "install ok installed" ] || fail "not installed"
"$root/usr/bin/certagent" version >/dev/null || fail "/usr/bin/certagent does not run"
uid=$(awk -F: '$1 == "certagent" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "certagent" { print $3 }' "$root/etc/group")
[ -n "$uid" ] && [ -n "$gid" ] || fail "no system user certagent in the root's /etc/passwd and /etc/group"
[ "$(stat -c '%a %u' "$root/var/lib/certagent")" = "700 $uid" ] || fail "/var/lib/certagent is $(stat -c '%a %u' "$root/var/lib/certagent"), want 700 owned by certagent ($uid)"
[ "$(stat -c '%a %u %g' "$root/etc/certagent/certagent.yaml")" = "640 0 $gid" ] || fail "the config is $(stat -c '%a %u %g' "$root/etc/certagent/certagent.yaml"), want 640 root:certagent"
[ "$(readlink "$root/etc/systemd/system/multi-user.target.wants/certagent.service")" = /lib/systemd/system/certagent.service ] || fail "the unit is not enabled"
# The packaged unit passes systemd's checker, which exits 0 on warnings: any output fails. It
# wants ExecStart's program on this machine: a copy points at the root's.
mkdir "$root/verify"
sed "s|^ExecStart=/usr/bin/certagent |ExecStart=$root/usr/bin/certagent |" "$root/lib/systemd/system/certagent.service" >"$root/verify/certagent.service"
out=$(systemd-analyze verify "$root/verify/certagent.service" 2>&1) && [ -z "$out" ] || fail "systemd-analyze verify: $out"
rm -r "$root/verify"
# Unconfigured: the service's standby says what to set (the conffile's keys are empty).
if "$root/usr/bin/certagent" config check -c "$root/etc/certagent/certagent.yaml" >/dev/null 2>&1; then
	fail "the shipped config passes config check, but it has no tenant"
fi

# An administrator's edit survives a reinstall (upgrade path) and a remove; purge removes it.
echo "# edited by the administrator" >>"$root/etc/certagent/certagent.yaml"
dpkg_ -i "$deb"
grep -q "edited by the administrator" "$root/etc/certagent/certagent.yaml" || fail "reinstall replaced the edited config"
echo state >"$root/var/lib/certagent/certagent.db"
dpkg_ -r certagent
[ ! -e "$root/usr/bin/certagent" ] && [ ! -e "$root/lib/systemd/system/certagent.service" ] || fail "remove left the program or the unit"
grep -q "edited by the administrator" "$root/etc/certagent/certagent.yaml" || fail "remove did not keep the config"
dpkg_ -P certagent
[ ! -e "$root/etc/certagent/certagent.yaml" ] || fail "purge kept the config"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/certagent.service" ] || fail "purge kept the unit enabled"
[ -e "$root/var/lib/certagent/certagent.db" ] || fail "purge removed the state (the audit trail is kept)"
if dpkg --root="$root" -s certagent >/dev/null 2>&1; then fail "dpkg still knows certagent after purge"; fi
echo "test-deb.sh: $(basename "$deb"): metadata, contents, install, reinstall keeping the edited config, remove keeping it, purge removing it: ok"
