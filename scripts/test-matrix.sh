#!/bin/bash
# test-matrix.sh - run the whole vapi_fdw test suite on several PostgreSQL
# majors, each in a minimal Debian chroot of the suite that ships it.
#
#   15  bookworm (Debian 12)      17  trixie (Debian 13)
#   18  sid                       19  sid + experimental (release candidate)
#
# A chroot is created on first use (debootstrap --variant=minbase, then the
# packages the suite needs) under $VAPI_MATRIX_CACHE (default
# /var/cache/vapi_fdw-matrix) and reused afterwards, so that later runs need
# no network.  Chroots are never copied.  Missing chroots are created side
# by side; then the versions run, up to $VAPI_MATRIX_JOBS at a time, each in
# a network namespace of its own (its own loopback, so that clusters and
# mocks of different versions never meet).  For each version the working
# tree (without .git) is copied into the chroot's /build/vapi_fdw and
# scripts/test.sh runs there with PG_MAJOR set; /proc, /dev/pts and
# /dev/shm are mounted for the run and unmounted at the end, on failure too.
#
# For one version ($VAPI_MATRIX_PACKAGE, default 17) the Debian package is
# built from debian/ with pg_buildext (warnings as errors), installed in the
# chroot, and the suite runs against the installed package; the package is
# removed again afterwards.
#
# A summary line per version is printed, and a closing
# "matrix: N passed, M failed" line.
#
# Usage: scripts/test-matrix.sh [--tools | --prepare] [VERSION ...]
#        (as root on Debian; default 15 17 18 19).  --tools only installs
#        what the machine itself needs (debootstrap, iproute2); --prepare
#        only creates or completes the chroots, so that CI can do it while
#        other tests run.
# Environment: VAPI_MATRIX_OPTIONAL="19" versions whose failure is reported
# but does not fail the run; VAPI_MATRIX_JOBS versions run at once (default:
# the number of processors); VAPI_MATRIX_PACKAGE the version tested through
# its Debian package ("" for none); VAPI_DIFFTEST_QUERIES the differential
# test's size in each chroot (default 600).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VAPI_MATRIX_CACHE:-/var/cache/vapi_fdw-matrix}
OPTIONAL=${VAPI_MATRIX_OPTIONAL:-19}
JOBS=${VAPI_MATRIX_JOBS:-$((2 * $(nproc)))}
PACKAGE=${VAPI_MATRIX_PACKAGE-17}
QUERIES=${VAPI_DIFFTEST_QUERIES:-600}
MODE=all
case "${1:-}" in
	--tools) MODE=tools; shift ;;
	--prepare) MODE=prepare; shift ;;
esac
VERSIONS=${*:-15 17 18 19}
# the packages every chroot gets; the packaging version gets PACKAGING too
SUITE_PKGS="libcurl4-openssl-dev libjson-c-dev python3 python3-psycopg2 gcc make
	util-linux procps ca-certificates"
PACKAGING_PKGS="build-essential debhelper dpkg-dev postgresql-server-dev-all"
MOUNTED=""

# log MESSAGE: progress line on stderr.
log() {
	echo "==> $*" >&2
}

# mirror: the Debian mirror this machine's apt already uses.
mirror() {
	local m=""
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		m=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources | grep -v security | head -1)
	fi
	if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

# old_jsonc_of VERSION: "SUITE JSONC" when that version's chroot uses the
# json-c of an older Debian suite instead of its own, to cover the oldest
# json-c supported (15: bullseye's 0.15; the machine itself has bookworm's
# 0.16).
old_jsonc_of() {
	case "$1" in
		15) echo "bullseye 0.15" ;;
		*) echo "" ;;
	esac
}

# jsonc_version DIR: the json-c version installed in a chroot.
jsonc_version() {
	in_chroot "$1" dpkg-query -W -f='${Version}' libjson-c5 2>/dev/null || true
}

# needs_old_jsonc VERSION DIR: true when the chroot should have an older
# json-c than it has.
needs_old_jsonc() {
	local want
	want=$(old_jsonc_of "$1")
	[ -n "$want" ] || return 1
	case "$(jsonc_version "$2")" in
		"${want#* }"*) return 1 ;;
		*) return 0 ;;
	esac
}

# use_old_jsonc VERSION DIR: install the older json-c in the chroot when
# that version asks for one (a downgrade; nothing in a minimal chroot
# depends on the newer one).
use_old_jsonc() {
	local v=$1 dir=$2 old
	needs_old_jsonc "$v" "$dir" || return 0
	old=$(old_jsonc_of "$v")
	old=${old%% *}
	echo "deb $(mirror) $old main" > "$dir/etc/apt/sources.list.d/$old.list"
	in_chroot "$dir" apt-get update -qq || return 1
	in_chroot "$dir" apt-get install -y -qq --no-install-recommends --allow-downgrades \
		"libjson-c5/$old" "libjson-c-dev/$old" >/dev/null || return 1
	in_chroot "$dir" apt-get clean
}

# suite_of VERSION: the Debian suite whose archive ships that major.
suite_of() {
	case "$1" in
		15) echo bookworm ;;
		17) echo trixie ;;
		18 | 19) echo sid ;;
		*) echo "no Debian suite ships PostgreSQL $1" >&2; return 1 ;;
	esac
}

# unmount_all: undo every mount this process made (EXIT trap).
unmount_all() {
	local m
	for m in $MOUNTED; do
		umount -l "$m" 2>/dev/null || true
	done
	MOUNTED=""
}

# unmount_dir DIR: undo whatever is still mounted in a chroot (after a
# killed job).
unmount_dir() {
	local m
	for m in "$1/dev/shm" "$1/dev/pts" "$1/proc"; do
		if mountpoint -q "$m" 2>/dev/null; then
			umount -l "$m" 2>/dev/null || true
		fi
	done
}

# mount_chroot DIR: proc, devpts and a tmpfs /dev/shm for PostgreSQL.
mount_chroot() {
	local dir=$1
	unmount_dir "$dir"
	mkdir -p "$dir/proc" "$dir/dev/pts" "$dir/dev/shm"
	mount -t proc proc "$dir/proc" && MOUNTED="$dir/proc $MOUNTED"
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$dir/dev/pts" && MOUNTED="$dir/dev/pts $MOUNTED"
	mount -t tmpfs -o size=256m tmpfs "$dir/dev/shm" && MOUNTED="$dir/dev/shm $MOUNTED"
}

# in_chroot DIR COMMAND...: run a command in the chroot with a clean
# environment (variables to pass go first, as env NAME=VALUE arguments).
in_chroot() {
	local dir=$1
	shift
	chroot "$dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# wanted_pkgs VERSION: every package the chroot of that version needs.
wanted_pkgs() {
	echo "postgresql-$1 postgresql-server-dev-$1 postgresql-client-$1 $SUITE_PKGS"
	if [ "$1" = "$PACKAGE" ]; then
		echo "$PACKAGING_PKGS"
	fi
}

# make_chroot VERSION DIR: a minimal chroot with everything the suite needs.
make_chroot() {
	local v=$1 dir=$2 suite
	suite=$(suite_of "$v")
	rm -rf "$dir"
	log "creating a $suite chroot for PostgreSQL $v in $dir"
	debootstrap --variant=minbase "$suite" "$dir" "$(mirror)" >"$dir.debootstrap.log" 2>&1 || {
		tail -20 "$dir.debootstrap.log" >&2
		return 1
	}
	echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99no-valid-until"
	if [ "$v" = 19 ]; then
		echo "deb $(mirror) experimental main" > "$dir/etc/apt/sources.list.d/experimental.list"
	fi
	printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
	chmod +x "$dir/usr/sbin/policy-rc.d"
	mount_chroot "$dir" || return 1
	in_chroot "$dir" apt-get update -qq || return 1
	if [ "$v" = 19 ]; then
		# the release candidate and the libpq it needs come from experimental
		in_chroot "$dir" apt-get install -y -qq --no-install-recommends \
			postgresql-19/experimental postgresql-server-dev-19/experimental \
			postgresql-client-19/experimental libpq-dev/experimental libpq5/experimental >/dev/null ||
			return 1
	fi
	# shellcheck disable=SC2046
	in_chroot "$dir" apt-get install -y -qq --no-install-recommends $(wanted_pkgs "$v") >/dev/null || return 1
	use_old_jsonc "$v" "$dir" || return 1
	in_chroot "$dir" apt-get clean
	unmount_all
	touch "$dir/.vapi-ready"
}

# complete_chroot VERSION DIR: install what a chroot made by an earlier
# run lacks (the packaging tools, when that version became the packaging
# one); needs the network only then.
complete_chroot() {
	local v=$1 dir=$2 p missing=""
	for p in $(wanted_pkgs "$v"); do
		if ! in_chroot "$dir" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing="$missing $p"
		fi
	done
	if [ -z "$missing" ] && ! needs_old_jsonc "$v" "$dir"; then
		return 0
	fi
	log "PostgreSQL $v: completing the chroot ($missing $(old_jsonc_of "$v"))"
	mount_chroot "$dir" || return 1
	if [ -n "$missing" ]; then
		in_chroot "$dir" apt-get update -qq || return 1
		# shellcheck disable=SC2086
		in_chroot "$dir" apt-get install -y -qq --no-install-recommends $missing >/dev/null || return 1
	fi
	use_old_jsonc "$v" "$dir" || return 1
	in_chroot "$dir" apt-get clean
	unmount_all
}

# prepare VERSION: create or complete the chroot; the outcome goes to
# $CACHE/pgVERSION.prepare.
prepare() {
	local v=$1 dir="$CACHE/pg$1" start rc=0
	start=$(date +%s)
	trap unmount_all EXIT
	if [ ! -f "$dir/.vapi-ready" ]; then
		make_chroot "$v" "$dir" >"$CACHE/pg$v.prepare.log" 2>&1 || rc=$?
	else
		complete_chroot "$v" "$dir" >"$CACHE/pg$v.prepare.log" 2>&1 || rc=$?
	fi
	unmount_all
	echo "$rc $(($(date +%s) - start))" >"$CACHE/pg$v.prepare"
}

# build_package VERSION DIR: build the Debian package in the chroot (from
# /build/vapi_fdw, results in /build) and install it.
build_package() {
	local v=$1 dir=$2 deb
	log "PostgreSQL $v: building and installing the Debian package"
	in_chroot "$dir" WERROR=1 PG_SUPPORTED_VERSIONS="$v" PG_UPDATECONTROL=yes \
		bash -c 'cd /build/vapi_fdw && dpkg-buildpackage -us -uc -b' || return 1
	deb=$(cd "$dir/build" && ls postgresql-"$v"-vapi-fdw_*.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || { echo "dpkg-buildpackage made no postgresql-$v-vapi-fdw package"; return 1; }
	echo "---- $deb ----"
	in_chroot "$dir" dpkg-deb --info "/build/$deb" | sed -n 's/^ \(Package\|Version\|Depends\):/\1:/p'
	in_chroot "$dir" dpkg-deb --contents "/build/$deb" | awk '{print $NF}'
	in_chroot "$dir" dpkg -i "/build/$deb" || return 1
}

# run_version VERSION: the whole suite in that version's chroot (against
# the Debian package for $PACKAGE); the outcome goes to $CACHE/pgVERSION.result
# and the output to $CACHE/pgVERSION.log.
run_version() {
	local v=$1 dir="$CACHE/pg$1" start rc=0 installed=0
	start=$(date +%s)
	trap unmount_all EXIT
	if [ "$v" = "$PACKAGE" ]; then
		# leave the cached chroot as it was: remove the package at the end
		trap 'unmount_all; in_chroot "$dir" dpkg -P postgresql-'"$v"'-vapi-fdw >/dev/null 2>&1 || true' EXIT
	fi
	rm -rf "$dir/build"
	mkdir -p "$dir/build/vapi_fdw"
	tar -C "$ROOT" --exclude=.git --exclude=results --exclude='*.o' --exclude='*.bc' \
		--exclude='*.so' -cf - . | tar -C "$dir/build/vapi_fdw" -xf -
	mount_chroot "$dir" || { echo "1 0 0" >"$CACHE/pg$v.result"; return 1; }
	log "PostgreSQL $v: running the suite"
	{
		if [ "$v" = "$PACKAGE" ]; then
			build_package "$v" "$dir" && installed=1 || rc=$?
		fi
		if [ "$rc" = 0 ]; then
			# a network namespace of its own: only its own loopback
			unshare --net -- bash -c 'ip link set lo up && exec "$@"' sh \
				chroot "$dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
				PG_MAJOR="$v" VAPI_DIFFTEST_QUERIES="$QUERIES" VAPI_TEST_INSTALLED="$installed" \
				bash /build/vapi_fdw/scripts/test.sh || rc=$?
		fi
	} >"$CACHE/pg$v.log" 2>&1
	echo "$rc $(($(date +%s) - start)) $installed" >"$CACHE/pg$v.result"
}

# summary VERSION: the version's summary line; returns 1 when it failed
# and is not optional.
summary() {
	local v=$1 rc secs installed line prep psecs how=""
	read -r prep psecs <"$CACHE/pg$v.prepare" || { prep=1; psecs=0; }
	if [ "$prep" != 0 ]; then
		rc=1 secs=0 installed=0
		line="chroot not ready, log $CACHE/pg$v.prepare.log"
	else
		read -r rc secs installed <"$CACHE/pg$v.result" || { rc=1; secs=0; installed=0; }
		line=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$CACHE/pg$v.log" | tail -1 || true)
		line=${line:-no closing line}
	fi
	[ "$installed" = 1 ] && how=", Debian package postgresql-$v-vapi-fdw"
	local times="json-c $(jsonc_version "$CACHE/pg$v"); chroot ${psecs}s, suite ${secs}s"
	if [ "$rc" = 0 ]; then
		echo "PostgreSQL $v: ok ($line$how; $times)"
	elif echo " $OPTIONAL " | grep -q " $v "; then
		echo "PostgreSQL $v: FAILED, optional ($line$how; $times; log $CACHE/pg$v.log)"
	else
		echo "PostgreSQL $v: FAILED ($line$how; $times; log $CACHE/pg$v.log)"
		return 1
	fi
}

# kill_jobs: stop the versions still running (INT/TERM) and unmount.
kill_jobs() {
	local j v
	for j in $(jobs -p); do
		kill "$j" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	for v in $VERSIONS; do
		unmount_dir "$CACHE/pg$v"
	done
}

[ "$(id -u)" = 0 ] || { echo "test-matrix.sh must run as root (chroot, mount)" >&2; exit 1; }
for v in $VERSIONS; do
	suite_of "$v" >/dev/null || exit 1
done
mkdir -p "$CACHE"
trap kill_jobs EXIT
trap 'exit 130' INT TERM

missing_tools=""
command -v debootstrap >/dev/null || missing_tools="$missing_tools debootstrap"
command -v ip >/dev/null || missing_tools="$missing_tools iproute2"
if [ -n "$missing_tools" ]; then
	log "installing$missing_tools"
	apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing_tools >/dev/null
fi

[ "$MODE" != tools ] || exit 0

# the chroots first, side by side (mostly waiting for the archive and disk)
for v in $VERSIONS; do
	rm -f "$CACHE/pg$v.prepare" "$CACHE/pg$v.result"
	prepare "$v" &
done
wait

if [ "$MODE" = prepare ]; then
	failed=0
	for v in $VERSIONS; do
		read -r prep psecs <"$CACHE/pg$v.prepare" || { prep=1; psecs=0; }
		if [ "$prep" = 0 ]; then
			echo "PostgreSQL $v: chroot ready (json-c $(jsonc_version "$CACHE/pg$v"), ${psecs}s)"
		else
			echo "PostgreSQL $v: chroot FAILED (${psecs}s; log $CACHE/pg$v.prepare.log)"
			failed=$((failed + 1))
		fi
	done
	[ "$failed" = 0 ]
	exit
fi

# then the suites, $JOBS at a time
for v in $VERSIONS; do
	read -r prep _ <"$CACHE/pg$v.prepare" || prep=1
	[ "$prep" = 0 ] || continue
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n || true
	done
	run_version "$v" &
done
wait

passed=0
failed=0
for v in $VERSIONS; do
	if summary "$v"; then
		read -r rc _ <"$CACHE/pg$v.result" 2>/dev/null && [ "$rc" = 0 ] && passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done
echo "matrix: $passed passed, $failed failed"
[ "$failed" = 0 ]
