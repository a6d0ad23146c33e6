# lib.sh - shared shell functions of the vapi_fdw scripts.
#
# Sourced by every script in scripts/ but test-matrix.sh.  They install
# what is missing (Debian packages), build and install the extension, start
# a throwaway PostgreSQL cluster and the local mock of the Vapi API, which
# vapi_cleanup stops again (it is installed as an EXIT trap, so it runs on
# failure too), and create the foreign tables in the cluster.

set -euo pipefail

VAPI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
export PG_CONFIG

VAPI_TMP=""
VAPI_MOCK_PID=""
VAPI_PG_STARTED=""
VAPI_MOCK_KEY=${VAPI_MOCK_KEY:-mock-secret-key-0123456789abcdef}

# log MESSAGE: progress line on stderr.
log() {
	echo "==> $*" >&2
}

# vapi_install_deps: install the Debian packages the build, the cluster and
# the mock need, if any is missing.  Safe to run again.
vapi_install_deps() {
	local pkgs="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-client-$PG_MAJOR
		libcurl4-openssl-dev libjson-c-dev python3 python3-psycopg2 gcc make ca-certificates
		util-linux procps"
	local missing=""
	local p
	for p in $pkgs; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing="$missing $p"
		fi
	done
	if [ -n "$missing" ]; then
		if [ "$(id -u)" != 0 ]; then
			echo "missing packages:$missing (run as root to install them)" >&2
			exit 1
		fi
		log "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# the cluster is ours to start: do not let the package start one
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
			chmod +x /usr/sbin/policy-rc.d
			apt-get install -y -qq --no-install-recommends $missing >/dev/null
			rm -f /usr/sbin/policy-rc.d
		else
			apt-get install -y -qq --no-install-recommends $missing >/dev/null
		fi
	fi
}

# vapi_build_install: build with warnings as errors and install.  With
# VAPI_TEST_INSTALLED=1 nothing is built: the extension already installed
# for this major (from the Debian package, say) is the one tested.
vapi_build_install() {
	if [ "${VAPI_TEST_INSTALLED:-0}" = 1 ]; then
		local so owner
		so="$("$PG_CONFIG" --pkglibdir)/vapi_fdw.so"
		if [ ! -f "$so" ] || [ ! -f "$("$PG_CONFIG" --sharedir)/extension/vapi_fdw.control" ]; then
			echo "VAPI_TEST_INSTALLED=1 but vapi_fdw is not installed for PostgreSQL $PG_MAJOR ($so)" >&2
			exit 1
		fi
		owner=$(dpkg-query -S "$so" 2>/dev/null | cut -d: -f1 || true)
		log "testing the installed vapi_fdw (${owner:-not from a Debian package}: $so)"
		return 0
	fi
	log "building vapi_fdw"
	make -C "$VAPI_ROOT" -s WERROR=1 PG_CONFIG="$PG_CONFIG" >/dev/null
	make -C "$VAPI_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# vapi_need_command COMMAND...: install the Debian package of the same name
# for each command a script needs besides the deps, when it is not on PATH.
vapi_need_command() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || { apt-get update -qq; apt-get install -y -qq "$c" >/dev/null; }
	done
}

# vapi_prepare [COMMAND...]: what every script does first: install the
# missing deps (and the commands named, see vapi_need_command), make the
# temporary folder with the cleanup trap, and build and install the
# extension.
vapi_prepare() {
	vapi_install_deps
	vapi_need_command "$@"
	vapi_make_tmp
	vapi_build_install
}

# vapi_free_port: print a free TCP port on the loopback interface.
vapi_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# vapi_cleanup: stop the cluster and the mock, remove the temporary folder.
vapi_cleanup() {
	local rc=$?
	if [ -n "$VAPI_PG_STARTED" ] && [ -n "$VAPI_TMP" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$VAPI_TMP/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	if [ -n "$VAPI_MOCK_PID" ]; then
		kill "$VAPI_MOCK_PID" 2>/dev/null || true
		wait "$VAPI_MOCK_PID" 2>/dev/null || true
	fi
	if [ -n "$VAPI_TMP" ] && [ -d "$VAPI_TMP" ]; then
		rm -rf "$VAPI_TMP"
	fi
	exit $rc
}

# vapi_make_tmp: the temporary folder for the cluster, its socket and the
# mock's port file; readable by the postgres user.
vapi_make_tmp() {
	VAPI_TMP=$(mktemp -d /tmp/vapi_fdw.XXXXXX)
	chmod 755 "$VAPI_TMP"
	trap vapi_cleanup EXIT
	trap 'exit 130' INT TERM
}

# vapi_init_cluster PORT [SETTING...]: initdb a cluster in $VAPI_TMP/data
# as the postgres OS user and configure it for PORT, with its socket in
# $VAPI_TMP, no TCP listener and no fsync, plus the postgresql.conf lines
# given.  Does not start it.
vapi_init_cluster() {
	local port=$1 s
	shift
	chown postgres "$VAPI_TMP"
	if ! runuser -u postgres -- "$PG_BIN/initdb" -D "$VAPI_TMP/data" -U postgres \
		--auth=trust --encoding=UTF8 --locale=C --no-sync >"$VAPI_TMP/initdb.log" 2>&1; then
		cat "$VAPI_TMP/initdb.log" >&2
		return 1
	fi
	{
		echo "listen_addresses = ''"
		echo "port = $port"
		echo "unix_socket_directories = '$VAPI_TMP'"
		echo "fsync = off"
		for s in "$@"; do echo "$s"; done
	} >> "$VAPI_TMP/data/postgresql.conf"
}

# vapi_cluster_started PORT: the cluster in $VAPI_TMP/data runs on PORT:
# have vapi_cleanup stop it, and export PGHOST, PGPORT, PGUSER for psql and
# pg_regress.
vapi_cluster_started() {
	VAPI_PG_STARTED=1
	export PGHOST="$VAPI_TMP" PGPORT="$1" PGUSER=postgres
}

# vapi_start_cluster [extra postgresql.conf settings...]: initdb and start a
# cluster as the postgres OS user on a free port, socket in $VAPI_TMP.
# Exports PGHOST, PGPORT, PGUSER for psql and pg_regress.
vapi_start_cluster() {
	local port
	port=$(vapi_free_port)
	log "starting PostgreSQL $PG_MAJOR on port $port"
	vapi_init_cluster "$port" "shared_buffers = 64MB" "log_line_prefix = '%m [%p] '" "$@"
	if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$VAPI_TMP/data" -l "$VAPI_TMP/server.log" -w start >/dev/null; then
		cat "$VAPI_TMP/server.log" >&2
		return 1
	fi
	vapi_cluster_started "$port"
}

# vapi_restart_cluster [extra postgresql.conf settings...]: stop the
# cluster started by vapi_start_cluster, add the settings given (a later
# line wins over an earlier one) and start it again on the same port.
vapi_restart_cluster() {
	local s
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$VAPI_TMP/data" -m fast -w stop >/dev/null
	for s in "$@"; do echo "$s"; done >> "$VAPI_TMP/data/postgresql.conf"
	if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$VAPI_TMP/data" -l "$VAPI_TMP/server.log" -w start >/dev/null; then
		cat "$VAPI_TMP/server.log" >&2
		return 1
	fi
}

# vapi_start_mock [mock options...]: start the local Vapi mock on a free
# loopback port.  Exports VAPI_MOCK_URL and VAPI_MOCK_KEY.
vapi_start_mock() {
	python3 "$VAPI_ROOT/test/vapi_mock.py" --host 127.0.0.1 --port 0 \
		--port-file "$VAPI_TMP/mock.port" --key "$VAPI_MOCK_KEY" \
		--blackhole-port-file "$VAPI_TMP/blackhole.port" "$@" \
		>"$VAPI_TMP/mock.log" 2>&1 &
	VAPI_MOCK_PID=$!
	VAPI_MOCK_URL=$(python3 "$VAPI_ROOT/test/mockctl.py" wait-ready --port-file "$VAPI_TMP/mock.port" --timeout 30)
	# a port that accepts connections and never answers (stuck connecting)
	VAPI_BLACKHOLE_URL="https://127.0.0.1:$(cat "$VAPI_TMP/blackhole.port")"
	export VAPI_MOCK_URL VAPI_MOCK_KEY VAPI_BLACKHOLE_URL
	log "mock Vapi API at $VAPI_MOCK_URL"
}

# vapi_psql [psql options...]: psql on the cluster's postgres database (a
# -d among the options picks another), without ~/.psqlrc, quiet, stopping
# at the first error.
vapi_psql() {
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"
}

# vapi_setup_foreign_table [DB]: in database DB (default postgres), create
# the extension, the server "vapi" for the API at $VAPI_SERVER_URL, the
# current user's mapping with the key $VAPI_SERVER_KEY (both default to the
# mock's), and import the foreign tables into public.  The URL and the key
# reach psql through its environment (\getenv), never on a command line.
vapi_setup_foreign_table() {
	VAPI_SERVER_URL=${VAPI_SERVER_URL:-$VAPI_MOCK_URL} VAPI_SERVER_KEY=${VAPI_SERVER_KEY:-$VAPI_MOCK_KEY} \
		vapi_psql -d "${1:-postgres}" <<'SQL'
\getenv url VAPI_SERVER_URL
\getenv key VAPI_SERVER_KEY
CREATE EXTENSION vapi_fdw;
CREATE SERVER vapi FOREIGN DATA WRAPPER vapi_fdw OPTIONS (url :'url');
CREATE USER MAPPING FOR CURRENT_USER SERVER vapi OPTIONS (api_key :'key');
IMPORT FOREIGN SCHEMA vapi FROM SERVER vapi INTO public;
SQL
}
