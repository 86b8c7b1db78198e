#!/usr/bin/env bash
# wine-test.sh runs certagent's Windows-specific Go tests on Linux, under Wine: it
# cross-compiles a test binary per package (GOOS=windows) and runs it in a Wine prefix.
# `make test-windows` calls it; it also runs on its own.
#
# Debian/Ubuntu packages it needs (.ci/run installs them):
#
#   apt-get install -y --no-install-recommends wine64 wine gcc-mingw-w64-x86-64
#
# plus go, git, tar, flock (util-linux) and timeout (coreutils). No display is needed.
#
# Usage: scripts/wine-test.sh [--all] [--list] [--fresh] [--keep] [--no-overlay] [--no-heavy] [PACKAGE...]
#
#   (no PACKAGE)  the packages with Windows-specific code, found from the source (see below)
#   PACKAGE...    these packages instead (./agent/intake, agent/intake or the import path)
#   --all         every package with tests
#   --list        print the packages it would test, and why, and stop
#   --fresh       use a throwaway Wine prefix instead of the cached one
#   --keep        keep the logs, and the test binaries and sources in the prefix (until the
#                 next run), even when everything passed
#   --no-overlay  build without the Deleteat overlay (to see Wine's raw behaviour)
#   --no-heavy    leave out the packages whose test binary links msgraph-sdk-go (agent,
#                 agent/graph, cmd/certagent): a quick run
#
# Environment: WINE_TEST_TIMEOUT (seconds per package, default 300), CERTAGENT_WINE_CACHE
# (where the prefix is cached, default ${XDG_CACHE_HOME:-$HOME/.cache}/certagent-wine),
# CERTAGENT_WINE_FRESH=1 (same as --fresh).
#
# A package is tested when its own files (tests included) differ between the Windows and the
# Linux build (_windows.go, //go:build windows, !unix...), or use runtime.GOOS or
# golang.org/x/sys/windows, or when it imports a package whose Windows build differs (an
# in-module one found by the same rule, or a third-party one such as bbolt, fsnotify,
# golang.org/x/sys/windows). The packages whose test binary links msgraph-sdk-go are built
# too: the first build for Windows compiles the SDK (minutes, once per Go build cache), and
# the Go build cache keeps each linked test binary, so later runs rebuild only what changed.
#
# What makes Go run under Wine 8.0 (scripts/wine/README.md tells more):
#   - scripts/wine/bcryptprimitives.c: ProcessPrng, which Go >= 1.22 needs and Wine 8.0 lacks.
#   - scripts/wine/_overlay/: a `go test -overlay` file that makes os.RemoveAll use the
#     pre-Windows-10 delete, because Wine answers STATUS_NOT_IMPLEMENTED to the newer one
#     (every t.TempDir cleanup would fail otherwise).
#   - scripts/wine/known-limits.txt: tests that cannot pass under Wine (no ACLs, no symbolic
#     links); they run apart and are reported, not counted.
#
# Exit status: 0 when every package built and passed, 1 when any failed, 2 on a usage or
# set-up error (a missing tool among them).

set -euo pipefail
export LC_ALL=C

readonly RECIPE=1 # bump when the prefix set-up below changes: the cached prefix is rebuilt
readonly APT_PACKAGES="wine64 wine gcc-mingw-w64-x86-64"

die() {
	echo "wine-test: $*" >&2
	exit 2
}

usage() {
	sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
	exit "${1:-0}"
}

# --- arguments -------------------------------------------------------------------------

mode=auto list_only=0 fresh=${CERTAGENT_WINE_FRESH:-0} keep=0 overlay=1 heavy_ok=1
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--all) mode=all ;;
	--list) list_only=1 ;;
	--fresh) fresh=1 ;;
	--keep) keep=1 ;;
	--no-overlay) overlay=0 ;;
	--no-heavy) heavy_ok=0 ;;
	-h | --help) usage 0 ;;
	--) shift; args+=("$@"); break ;;
	-*) echo "wine-test: unknown option $1" >&2; usage 2 >&2 ;;
	*) args+=("$1") ;;
	esac
	shift
done
if [ ${#args[@]} -gt 0 ]; then
	[ "$mode" = all ] && die "--all and a package list exclude each other"
	mode=given
fi
timeout_s=${WINE_TEST_TIMEOUT:-300}
case $timeout_s in '' | *[!0-9]*) die "WINE_TEST_TIMEOUT must be a number of seconds, not '$timeout_s'" ;; esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

# --- tools -----------------------------------------------------------------------------

need_go() {
	command -v go >/dev/null || die "go is not on PATH"
}

find_tools() {
	local missing=()
	WINE64=
	for c in /usr/lib/wine/wine64 "$(command -v wine64 || true)"; do
		if [ -n "$c" ] && [ -x "$c" ]; then WINE64=$c; break; fi
	done
	[ -n "$WINE64" ] || missing+=("wine64 (/usr/lib/wine/wine64)")
	WINESERVER=
	for c in "$(command -v wineserver || true)" /usr/lib/wine/wineserver; do
		if [ -n "$c" ] && [ -x "$c" ]; then WINESERVER=$c; break; fi
	done
	[ -n "$WINESERVER" ] || missing+=("wineserver")
	MINGW_CC=$(command -v x86_64-w64-mingw32-gcc || true)
	[ -n "$MINGW_CC" ] || missing+=("x86_64-w64-mingw32-gcc")
	local t
	for t in flock timeout tar; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "wine-test: FAIL: missing ${missing[*]}." >&2
		echo "wine-test: install them with: sudo apt-get install -y --no-install-recommends $APT_PACKAGES" >&2
		echo "wine-test: (flock is in util-linux, timeout in coreutils, tar in tar)" >&2
		exit 2
	fi
	WINE_VERSION=$("$WINE64" --version 2>/dev/null) || die "$WINE64 --version failed"
}

# --- time ------------------------------------------------------------------------------

now_us() { echo "${EPOCHREALTIME/./}"; }
secs() { awk -v us="$1" 'BEGIN { printf "%.1fs", us / 1e6 }'; }

# --- discovery -------------------------------------------------------------------------

declare -A reason=()     # package (relative) → why it is tested
# Packages that cannot run under Wine at all, whatever the rule above says.
declare -A never=(
	[internal/e2e]="builds ./cmd/certagent with the go tool at test time: no Go toolchain inside Wine, and cmd/certagent links msgraph-sdk-go"
	[internal/azcli]="drives Debian's azure-cli (az) and builds ./cmd/certagent with the go tool: neither exists inside Wine"
)
declare -A skip_note=()  # package → why it is not
selected=()

module=
rel_of() { # import path → path relative to the module root ("." for the root)
	if [ "$1" = "$module" ]; then echo .; else echo "${1#"$module"/}"; fi
}

# list_pkgs GOOS writes, for each module package, one line:
# importpath|dir|non-test files|test files|imports
list_pkgs() {
	GOOS=$1 GOARCH=amd64 go list -e \
		-f '{{.ImportPath}}|{{.Dir}}|{{join .GoFiles " "}} {{join .CgoFiles " "}}|{{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}|{{join .Imports " "}}' \
		./...
}

# grep_os DIR FILES... says which of these files make their package OS-dependent at run time.
grep_os() {
	local dir=$1 f goos=() xsys=() out=()
	shift
	for f in "$@"; do
		[ -n "$f" ] || continue
		if grep -q -E 'runtime\.GOOS' "$dir/$f"; then goos+=("$f"); fi
		if grep -q -E '"golang\.org/x/sys/windows' "$dir/$f"; then xsys+=("$f"); fi
	done
	if [ ${#goos[@]} -gt 0 ]; then out+=("runtime.GOOS in ${goos[*]}"); fi
	if [ ${#xsys[@]} -gt 0 ]; then out+=("x/sys/windows in ${xsys[*]}"); fi
	if [ ${#out[@]} -gt 0 ]; then printf '%s; ' "${out[@]}" | sed 's/; $//'; fi
	return 0
}

discover() {
	local work=$1
	module=$(go list -m)

	# Non-standard packages whose Windows build differs from the Linux one (by file set),
	# in the module or third-party: what an import can make Windows-specific.
	local f='{{if not .Standard}}{{.ImportPath}} {{join .GoFiles ","}}{{join .CgoFiles ","}}{{end}}'
	GOOS=windows GOARCH=amd64 go list -e -deps -f "$f" ./... | sed '/^$/d' | sort -u >"$work/deps.windows"
	GOOS=linux GOARCH=amd64 go list -e -deps -f "$f" ./... | sed '/^$/d' | sort -u >"$work/deps.linux"
	declare -A ossens=()
	local p rest
	while read -r p rest; do ossens[$p]=1; done < <(comm -3 "$work/deps.linux" "$work/deps.windows" | sed 's/^\t//')

	list_pkgs windows >"$work/pkgs.windows"
	list_pkgs linux >"$work/pkgs.linux"
	declare -A lin_files=()
	local dir files tfiles imports
	while IFS='|' read -r p dir files tfiles imports; do
		lin_files[$p]="$files|$tfiles"
	done <"$work/pkgs.linux"

	# Own code first: non-test differences make a package Windows-specific for importers.
	declare -A own=() own_reason=()
	local g
	while IFS='|' read -r p dir files tfiles imports; do
		local why=()
		if [ "${lin_files[$p]:-}" != "$files|$tfiles" ]; then
			# Name the files that only one of the two builds takes.
			local diff
			diff=$(comm -3 <(tr -s ' |' '\n' <<<"${lin_files[$p]:-}" | sed '/^$/d' | sort -u) \
				<(tr ' ' '\n' <<<"$files $tfiles" | sed '/^$/d' | sort -u) | tr -d '\t' | paste -sd, -)
			why+=("OS-specific files ${diff//,/ }")
			if [ "${lin_files[$p]%%|*}" != "$files" ]; then own[$p]=1; fi
		fi
		# shellcheck disable=SC2086 # word splitting of file lists is intended
		g=$(grep_os "$dir" $files)
		if [ -n "$g" ]; then why+=("$g"); own[$p]=1; fi
		# shellcheck disable=SC2086
		g=$(grep_os "$dir" $tfiles)
		if [ -n "$g" ]; then why+=("$g"); fi
		if [ ${#why[@]} -gt 0 ]; then
			own_reason[$p]=$(printf '%s; ' "${why[@]}")
			own_reason[$p]=${own_reason[$p]%; }
		fi
	done <"$work/pkgs.windows"
	for p in "${!own[@]}"; do ossens[$p]=1; done

	local i uses
	while IFS='|' read -r p dir files tfiles imports; do
		uses=()
		for i in $imports; do
			if [ -n "${ossens[$i]:-}" ]; then
				if [[ $i == "$module"/* ]]; then uses+=("$(rel_of "$i")"); else uses+=("$i"); fi
			fi
		done
		local r=${own_reason[$p]:-}
		if [ ${#uses[@]} -gt 0 ]; then
			r="${r:+$r; }imports ${uses[*]}"
		fi
		if [ -n "$r" ] || [ "$mode" = all ]; then
			reason[$(rel_of "$p")]=${r:-(--all)}
		fi
	done <"$work/pkgs.windows"
	return 0
}

# check_binaries drops, from reason[], the packages without tests (and, with --no-heavy, those
# whose test binary links msgraph-sdk-go), and fills selected[] in import-path order.
check_binaries() {
	local work=$1 p deps rel
	GOOS=windows GOARCH=amd64 go list -e -test \
		-f '{{if not .ForTest}}{{.ImportPath}}|{{join .Deps " "}}{{end}}' "$@" >"$work/tests.windows"
	declare -A has_test=() heavy=() e2e=()
	while IFS='|' read -r p deps; do
		case $p in *.test) ;; *) continue ;; esac
		p=${p%.test}
		has_test[$p]=1
		case " $deps " in *" github.com/microsoftgraph/"*) heavy[$p]=1 ;; esac
		case " $deps " in *" $module/internal/e2e "*) e2e[$p]=1 ;; esac
	done <"$work/tests.windows"
	for rel in $(printf '%s\n' "${!reason[@]}" | sort); do
		if [ "$rel" = . ]; then p=$module; else p=$module/$rel; fi
		if [ -n "${never[$rel]:-}" ]; then
			skip_note[$rel]=${never[$rel]}
		elif [ -n "${heavy[$p]:-}" ] && [ "$heavy_ok" = 0 ]; then
			skip_note[$rel]="links msgraph-sdk-go: left out (--no-heavy)"
		elif [ -n "${e2e[$p]:-}" ]; then
			skip_note[$rel]="uses internal/e2e, which builds ./cmd/certagent with the go tool at test time (no Go inside Wine)"
		elif [ -z "${has_test[$p]:-}" ]; then
			skip_note[$rel]="no test files"
		else
			selected+=("$rel")
		fi
	done
	return 0
}

# --- known Wine limitations ------------------------------------------------------------

declare -A limits=()    # package → space-separated test names
declare -A limit_text=() # package/test → text every failure message of the test must contain
declare -A limit_why=()  # package/test → why Wine cannot pass it
load_limits() {
	local pkg test text why line n=0
	while IFS= read -r line; do
		n=$((n + 1))
		case $line in '' | '#'*) continue ;; esac
		IFS='|' read -r pkg test text why <<<"$line"
		pkg=$(trim "$pkg") test=$(trim "$test") text=$(trim "$text") why=$(trim "${why:-}")
		if [ -z "$pkg" ] || [ -z "$test" ] || [ -z "$text" ] || [ -z "$why" ]; then
			die "scripts/wine/known-limits.txt:$n: want PACKAGE | TEST | EXPECTED TEXT | REASON"
		fi
		limits[$pkg]="${limits[$pkg]:-}${limits[$pkg]:+ }$test"
		limit_text[$pkg/$test]=$text
		limit_why[$pkg/$test]=$why
	done <"$here/wine/known-limits.txt"
	return 0
}

trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	echo "${s%"${s##*[![:space:]]}"}"
}

# judge_limit LOG TEST TEXT reads the -test.v output of a known-limits run and prints
# "expected" (TEST failed, and each of its failure messages contains TEXT), "passed",
# "missing" (no such test), or "other: LINE" (it failed for another reason: LINE).
judge_limit() {
	awk -v t="$2" -v text="$3" '
		$0 == "=== RUN   " t { seen = 1; inside = 1; next }
		inside && index($0, "--- FAIL: " t " ") == 1 { verdict = "fail"; inside = 0; next }
		inside && (index($0, "--- PASS: " t " ") == 1 || index($0, "--- SKIP: " t " ") == 1) { verdict = "passed"; inside = 0; next }
		inside && /^ +[^ ]+\.go:[0-9]+: / { msgs++; if (index($0, text) == 0 && bad == "") bad = $0 }
		END {
			if (!seen) print "missing"
			else if (verdict == "passed") print "passed"
			else if (verdict != "fail") print "other: did not finish"
			else if (bad != "") { sub(/^ +/, "", bad); print "other: " bad }
			else if (msgs == 0) print "other: failed without a message"
			else print "expected"
		}' "$1"
}

# --- Wine prefix -----------------------------------------------------------------------

wine_env() {
	export WINEPREFIX=$1 WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
	unset DISPLAY WAYLAND_DISPLAY
}

# make_prefix DIR LOG creates a win64 prefix in DIR with the ProcessPrng shim and
# %TEMP% = C:\certagent\tmp (scripts/wine/prefix.sh, shared with internal/winsvc).
make_prefix() {
	"$here/wine/prefix.sh" "$1" 2>>"$2" || { echo "making the prefix failed (see $2)" >&2; return 1; }
}

# run_exe REL NAME LOG ARGS... runs the test binary NAME.test.exe from its package folder
# under Wine, bounded by timeout. It runs in the background, in timeout's own process group,
# and is waited for: an interrupt then reaches the trap at once (bash defers a trap until a
# foreground child ends), and never reaches the test, which matters because a Go program
# under Wine 8.0 exits with status 0 on SIGINT, even in the middle of a test. Cleanup then
# stops it and wineserver.
run_exe() {
	local rel=$1 name=$2 log=$3 rc=0
	shift 3
	(cd "$cdir/src/$rel" && exec timeout -k 10 $((timeout_s + 60)) \
		"$WINE64" "C:\\certagent\\bin\\$name.test.exe" "$@" 9>&-) >"$log" 2>&1 </dev/null &
	run_pid=$!
	wait "$run_pid" || rc=$?
	run_pid=
	return "$rc"
}

show_log() { # show_log LOG prints LOG indented, at most 150 lines
	sed 's/^/    | /' "$1" | head -n 150
	if [ "$(wc -l <"$1")" -gt 150 ]; then echo "    | ... (full log: $1)"; fi
	return 0
}

# --- main ------------------------------------------------------------------------------

need_go
[ "$list_only" = 1 ] || find_tools
t_start=$(now_us)
work=$(mktemp -d "${TMPDIR:-/tmp}/certagent-wine-test.XXXXXX")
prefix='' wineserver_up=0 failed=0 run_pid=
cleanup() {
	local rc=$?
	if [ -n "$run_pid" ]; then
		kill "$run_pid" 2>/dev/null || true
	fi
	if [ "$wineserver_up" = 1 ]; then
		WINEPREFIX=$prefix "$WINESERVER" -k >/dev/null 2>&1 || true
	fi
	if [ -n "$prefix" ] && [ "$keep" = 1 ] && [ -d "$prefix/drive_c/certagent" ]; then
		echo "wine-test: test binaries and sources kept in $prefix/drive_c/certagent (C:\\certagent)"
	elif [ -n "$prefix" ] && [ "$fresh" = 1 ]; then
		rm -rf "$prefix"
	elif [ -n "$prefix" ]; then
		rm -rf "$prefix/drive_c/certagent"
	fi
	if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
		[ -d "$work" ] && echo "wine-test: logs kept in $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "wine-test: interrupted"; exit 130' INT TERM

# Which packages.
if [ "$mode" = given ]; then
	module=$(go list -m)
	for i in "${!args[@]}"; do # agent/intake and agent/... mean the folders, as in the Makefile
		a=${args[$i]}
		case $a in ./* | ../* | /* | "$module" | "$module"/*) continue ;; esac
		if [ -d "$root/${a%/...}" ]; then args[i]=./$a; fi
	done
	while IFS= read -r p; do
		[ -n "$p" ] || continue
		case $p in "$module" | "$module"/*) ;; *) die "$p is not a package of $module" ;; esac
		reason[$(rel_of "$p")]="named on the command line"
	done < <(go list -e -f '{{.ImportPath}}' "${args[@]}")
	check_binaries "$work" "${args[@]}"
else
	discover "$work"
	check_binaries "$work" ./...
fi

# Column width: the longest package name.
w=16
for rel in "${!reason[@]}"; do [ "${#rel}" -gt "$w" ] && w=${#rel}; done
echo "== certagent: Windows tests under Wine"
for rel in $(printf '%s\n' "${!reason[@]}" | sort); do
	if [ -n "${skip_note[$rel]:-}" ]; then
		printf '   skip  %-*s  %s\n' "$w" "$rel" "${skip_note[$rel]}"
	else
		printf '   test  %-*s  %s\n' "$w" "$rel" "${reason[$rel]}"
	fi
done
[ ${#selected[@]} -gt 0 ] || die "no package to test"
[ "$list_only" = 1 ] && exit 0

load_limits
echo "   $WINE_VERSION; $(go version | cut -d' ' -f3)"

# The prefix: cached per Wine version and set-up recipe, or a throwaway one.
t0=$(now_us)
key_src="$RECIPE $WINE_VERSION $(cat "$here/wine/bcryptprimitives.c" "$here/wine/prefix.sh")"
key="wine-$(sed 's/^wine-//; s/ .*//' <<<"$WINE_VERSION")-$(sha256sum <<<"$key_src" | cut -c1-12)"
cache_root=${CERTAGENT_WINE_CACHE:-${XDG_CACHE_HOME:-${HOME:-}/.cache}/certagent-wine}
if [ "$fresh" != 1 ] && ! { [ -n "${HOME:-}${XDG_CACHE_HOME:-}${CERTAGENT_WINE_CACHE:-}" ] && mkdir -p "$cache_root" 2>/dev/null && [ -w "$cache_root" ]; }; then
	echo "   cannot write the cache folder $cache_root: using a throwaway prefix"
	fresh=1
fi
if [ "$fresh" = 1 ]; then
	prefix=$work/prefix
	make_prefix "$prefix" "$work/prefix.log" || die "could not create the Wine prefix"
	prefix_note="throwaway prefix, created in $(secs $(($(now_us) - t0)))"
else
	# One run at a time per cache: the runs would share one wineserver and one work folder.
	exec 9>"$cache_root/lock"
	if ! flock -n 9; then
		echo "   waiting for another wine-test run to finish (lock $cache_root/lock)"
		flock -w 900 9 || die "gave up waiting for $cache_root/lock"
	fi
	prefix=$cache_root/$key
	if [ -f "$prefix/.certagent-ready" ] && [ -f "$prefix/drive_c/windows/system32/bcryptprimitives.dll" ]; then
		prefix_note="cached prefix $prefix"
	else
		for old in "$cache_root"/wine-*; do
			[ -d "$old" ] && [ "$old" != "$prefix" ] && { echo "   removing stale prefix $old"; rm -rf "$old"; }
		done
		make_prefix "$prefix" "$work/prefix.log" || { rm -rf "$prefix"; die "could not create the Wine prefix"; }
		touch "$prefix/.certagent-ready"
		prefix_note="new cached prefix $prefix, created in $(secs $(($(now_us) - t0)))"
	fi
fi
echo "   $prefix_note"

# A lasting wineserver: each test binary then starts in ~0.2 s instead of ~1.3 s. It stays
# 120 s after its last client rather than forever, so a run killed with SIGKILL does not leave
# it behind; cleanup stops it at once. (Debian's wrapper passes -p0 first; the last -p wins.)
# Wine processes do not inherit fd 9, the cache lock.
wine_env "$prefix"
"$WINESERVER" -p120 9>&- || die "could not start wineserver"
wineserver_up=1

# The source tree, as git sees it, inside the prefix's C: drive: tests run from their
# package folder (testdata/, ../../configs) without ever writing into the checkout.
cdir=$prefix/drive_c/certagent
rm -rf "$cdir"
mkdir -p "$cdir/src" "$cdir/tmp" "$cdir/bin"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z -c -o --exclude-standard |
		tar --null -T - --ignore-failed-read --warning=no-failed-read -cf - | tar -xf - -C "$cdir/src"
else
	tar --exclude=./.git --exclude=./bin --exclude=./dist --exclude=./.dev -cf - . | tar -xf - -C "$cdir/src"
fi

build_flags=()
if [ "$overlay" = 1 ]; then
	goroot=$(go env GOROOT)
	printf '{"Replace":{"%s/src/internal/syscall/windows/zz_certagent_wine_deleteat.go":"%s"}}\n' \
		"$goroot" "$here/wine/_overlay/zz_certagent_wine_deleteat.go" >"$work/overlay.json"
	build_flags+=("-overlay=$work/overlay.json")
fi
t_setup=$(($(now_us) - t_start))

# Build and run, one package at a time (2 cores: a build and a Wine run do not share well).
declare -A result=() build_t=() run_t=() notes=()
for rel in "${selected[@]}"; do
	name=${rel//\//-}
	[ "$rel" = . ] && name=root
	exe=$cdir/bin/$name.test.exe
	blog=$work/$name.build.log
	log=$work/$name.log
	printf '%-*s  ' "$w" "$rel"

	t0=$(now_us)
	if ! GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go test -c "${build_flags[@]}" -o "$exe" "./$rel" >"$blog" 2>&1; then
		build_t[$rel]=$(($(now_us) - t0))
		result[$rel]=FAIL notes[$rel]="does not build for Windows"
		failed=1
		echo "FAIL  build $(secs "${build_t[$rel]}")"
		sed 's/^/    | /' "$blog" | head -n 60
		continue
	fi
	build_t[$rel]=$(($(now_us) - t0))
	if [ ! -f "$exe" ]; then
		result[$rel]=NOTEST notes[$rel]="no test binary ($(tr '\n' ' ' <"$blog"))"
		echo "none  (no tests)"
		continue
	fi

	skip=
	if [ -n "${limits[$rel]:-}" ]; then skip="^($(tr ' ' '|' <<<"${limits[$rel]}"))\$"; fi
	flags=(-test.v=false -test.count=1 -test.short -test.paniconexit0 "-test.timeout=${timeout_s}s")
	[ -n "$skip" ] && flags+=("-test.skip=$skip")
	rm -rf "$cdir/tmp" && mkdir -p "$cdir/tmp"
	t0=$(now_us)
	rc=0
	run_exe "$rel" "$name" "$log" "${flags[@]}" || rc=$?
	run_t[$rel]=$(($(now_us) - t0))
	note=
	if [ "$rc" = 0 ]; then
		result[$rel]=PASS
	else
		result[$rel]=FAIL
		failed=1
		fails=$(sed -n 's/^--- FAIL: \([^ ]*\).*/\1/p' "$log" | paste -sd' ' -)
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			note="killed after $((timeout_s + 60))s"
		elif grep -q '^panic: test timed out' "$log"; then
			note="timed out after ${timeout_s}s"
		elif [ -n "$fails" ]; then
			note="failed: $fails"
		else
			note="exit status $rc"
		fi
	fi
	left=$(find "$cdir/tmp" -mindepth 1 -maxdepth 1 | wc -l)
	[ "$left" -gt 0 ] && note="${note:+$note; }left $left item(s) in %TEMP%"

	# The known Wine limitations: run apart, each checked to fail only for its known reason.
	xfail=() xpass=() stale=()
	if [ -n "$skip" ]; then
		llog=$work/$name.limits.log
		run_exe "$rel" "$name" "$llog" -test.v=true -test.count=1 -test.short \
			-test.paniconexit0 "-test.timeout=${timeout_s}s" "-test.run=$skip" || true
		for t in ${limits[$rel]}; do
			v=$(judge_limit "$llog" "$t" "${limit_text[$rel/$t]}")
			case $v in
			expected) xfail+=("$t") ;;
			passed) xpass+=("$t") ;;
			missing) stale+=("$t") ;;
			*)
				result[$rel]=FAIL failed=1
				note="${note:+$note; }$t failed for another reason than its known Wine limit (${v#other: })"
				;;
			esac
		done
		[ ${#xfail[@]} -gt 0 ] && note="${note:+$note; }known Wine limits failed as expected: ${xfail[*]}"
		[ ${#xpass[@]} -gt 0 ] && note="${note:+$note; }WARNING now pass under Wine, drop from known-limits.txt: ${xpass[*]}"
		[ ${#stale[@]} -gt 0 ] && note="${note:+$note; }WARNING no such test, update known-limits.txt: ${stale[*]}"
	fi
	notes[$rel]=$note
	echo "${result[$rel]}  build $(secs "${build_t[$rel]}")  run $(secs "${run_t[$rel]}")"
	for t in "${xfail[@]}"; do
		printf '    (known Wine limit, not counted: %s: %s)\n' "$t" "${limit_why[$rel/$t]}"
	done
	if [ "${result[$rel]}" = FAIL ]; then
		[ "$rc" != 0 ] && show_log "$log"
		[ -n "$skip" ] && [[ $note == *"another reason"* ]] && show_log "$llog"
	fi
done

# Summary.
echo
echo "== summary ($WINE_VERSION)"
printf '%-6s %-*s %8s %8s  %s\n' RESULT "$w" PACKAGE BUILD RUN NOTES
for rel in "${selected[@]}"; do
	bt=- rt=-
	[ -n "${build_t[$rel]:-}" ] && bt=$(secs "${build_t[$rel]}")
	[ -n "${run_t[$rel]:-}" ] && rt=$(secs "${run_t[$rel]}")
	printf '%-6s %-*s %8s %8s  %s\n' "${result[$rel]}" "$w" "$rel" "$bt" "$rt" "${notes[$rel]:-}"
done
for rel in $(printf '%s\n' "${!skip_note[@]}" | sort); do
	printf '%-6s %-*s %8s %8s  %s\n' SKIP "$w" "$rel" - - "${skip_note[$rel]}"
done
[ "$overlay" = 1 ] && echo "(Go std overlay: os.RemoveAll uses the pre-Windows-10 delete, see scripts/wine/_overlay/)"
echo "set-up $(secs "$t_setup") ($prefix_note), total $(secs $(($(now_us) - t_start)))"
if [ "$failed" = 1 ]; then
	echo "wine-test: FAIL"
	exit 1
fi
echo "wine-test: all passed"
