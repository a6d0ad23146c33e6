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
# no network.  Chroots are never copied.  For each version the working tree
# (without .git) is copied into the chroot's /build and scripts/test.sh runs
# there with PG_MAJOR set; /proc, /dev/pts and /dev/shm are mounted for the
# run and unmounted at the end, on failure too.  A summary line per version
# is printed, and a closing "matrix: N passed, M failed" line.
#
# Usage: scripts/test-matrix.sh [VERSION ...]    (as root on Debian; default 15 17 18 19)
# Environment: VAPI_MATRIX_OPTIONAL="19" versions whose failure is reported
# but does not fail the run; VAPI_DIFFTEST_QUERIES for the differential
# test's size in each chroot (default 600).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VAPI_MATRIX_CACHE:-/var/cache/vapi_fdw-matrix}
OPTIONAL=${VAPI_MATRIX_OPTIONAL:-19}
QUERIES=${VAPI_DIFFTEST_QUERIES:-600}
VERSIONS=${*:-15 17 18 19}
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

# suite_of VERSION: the Debian suite whose archive ships that major.
suite_of() {
	case "$1" in
		15) echo bookworm ;;
		17) echo trixie ;;
		18 | 19) echo sid ;;
		*) echo "no Debian suite ships PostgreSQL $1" >&2; return 1 ;;
	esac
}

# unmount_all: undo every mount this run made (EXIT trap).
unmount_all() {
	local m
	for m in $MOUNTED; do
		umount -l "$m" 2>/dev/null || true
	done
	MOUNTED=""
}

# mount_chroot DIR: proc, devpts and a tmpfs /dev/shm for PostgreSQL.
mount_chroot() {
	local dir=$1
	mkdir -p "$dir/proc" "$dir/dev/pts" "$dir/dev/shm"
	mount -t proc proc "$dir/proc" && MOUNTED="$dir/proc $MOUNTED"
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$dir/dev/pts" && MOUNTED="$dir/dev/pts $MOUNTED"
	mount -t tmpfs -o size=256m tmpfs "$dir/dev/shm" && MOUNTED="$dir/dev/shm $MOUNTED"
}

# make_chroot VERSION DIR: a minimal chroot with everything the suite needs.
make_chroot() {
	local v=$1 dir=$2 suite
	local pkgs="postgresql-$v postgresql-server-dev-$v postgresql-client-$v libcurl4-openssl-dev
		libjson-c-dev python3 python3-psycopg2 gcc make util-linux procps ca-certificates"
	suite=$(suite_of "$v")
	command -v debootstrap >/dev/null || {
		log "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	}
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
	mount_chroot "$dir"
	chroot "$dir" apt-get update -qq
	if [ "$v" = 19 ]; then
		# the release candidate and the libpq it needs come from experimental
		chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			postgresql-19/experimental postgresql-server-dev-19/experimental \
			postgresql-client-19/experimental libpq-dev/experimental libpq5/experimental >/dev/null
	fi
	# shellcheck disable=SC2086
	chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
	chroot "$dir" apt-get clean
	unmount_all
	touch "$dir/.vapi-ready"
}

# run_version VERSION: the whole suite in that version's chroot; prints the
# suite's closing line.
run_version() {
	local v=$1 dir="$CACHE/pg$1" start rc=0
	start=$(date +%s)
	if [ ! -f "$dir/.vapi-ready" ]; then
		make_chroot "$v" "$dir"
	fi
	rm -rf "$dir/build"
	mkdir -p "$dir/build"
	tar -C "$ROOT" --exclude=.git --exclude=results --exclude='*.o' --exclude='*.so' -cf - . |
		tar -C "$dir/build" -xf -
	mount_chroot "$dir"
	log "PostgreSQL $v: running the suite"
	chroot "$dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		PG_MAJOR="$v" VAPI_DIFFTEST_QUERIES="$QUERIES" \
		bash /build/scripts/test.sh >"$CACHE/pg$v.log" 2>&1 || rc=$?
	unmount_all
	echo "$rc $(( $(date +%s) - start ))"
}

[ "$(id -u)" = 0 ] || { echo "test-matrix.sh must run as root (chroot, mount)" >&2; exit 1; }
mkdir -p "$CACHE"
trap unmount_all EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
summary=""
for v in $VERSIONS; do
	result=$(run_version "$v") || result="1 0"
	rc=${result%% *}
	secs=${result##* }
	line=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$CACHE/pg$v.log" | tail -1 || true)
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		summary="$summary\nPostgreSQL $v: ok (${line:-no closing line}, ${secs}s)"
	elif echo " $OPTIONAL " | grep -q " $v "; then
		summary="$summary\nPostgreSQL $v: FAILED, optional (${line:-no closing line}, ${secs}s; log $CACHE/pg$v.log)"
	else
		failed=$((failed + 1))
		summary="$summary\nPostgreSQL $v: FAILED (${line:-no closing line}, ${secs}s; log $CACHE/pg$v.log)"
	fi
done
printf '%b\n' "$summary"
echo "matrix: $passed passed, $failed failed"
[ "$failed" = 0 ]
