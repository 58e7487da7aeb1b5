#!/usr/bin/env bash
# Runs every check and test of gridlink: gofmt, go vet, and go test -race
# over all packages, the PostgreSQL conformance run included.
#
# Outside peers: the MQTT tests start their own mosquitto processes, the
# Modbus tests their own pymodbus servers and the dashboard's test a headless
# Chromium; all are installed from Debian's packages here when missing and
# the script runs as root.
#
# PostgreSQL: when GRIDLINK_TEST_POSTGRES is unset, this script starts the
# local Debian PostgreSQL cluster (installing it first when run as root on a
# machine that has none) and creates the test role and database.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

start_postgres() {
	if [ -n "${GRIDLINK_TEST_POSTGRES:-}" ]; then
		return
	fi
	if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
			log "installing PostgreSQL from Debian's packages"
			apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
		else
			log "PostgreSQL is not installed: its conformance run will be skipped"
			return
		fi
	fi
	local ver
	ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
	if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
		pg_createcluster "$ver" main >/dev/null
	fi
	pg_ctlcluster "$ver" main start 2>/dev/null || true
	for _ in $(seq 1 30); do
		pg_isready -q -h 127.0.0.1 && break
		sleep 1
	done
	su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='gridlink'\"" | grep -q 1 ||
		su postgres -c "psql -qc \"CREATE ROLE gridlink LOGIN SUPERUSER PASSWORD 'gridlink'\""
	su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='gridlink_test'\"" | grep -q 1 ||
		su postgres -c "createdb -O gridlink gridlink_test"
	export GRIDLINK_TEST_POSTGRES="postgres://gridlink:gridlink@127.0.0.1:5432/gridlink_test?sslmode=disable"
	log "PostgreSQL $ver is up"
}

install_peers() {
	local missing=()
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
	command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
	/usr/bin/python3 -c 'import pymodbus' 2>/dev/null || missing+=(python3-pymodbus)
	[ -x /usr/bin/chromium ] || missing+=(chromium)
	if [ ${#missing[@]} -eq 0 ]; then
		return
	fi
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${missing[*]} from Debian's packages"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		log "missing ${missing[*]}: the tests against them will be skipped"
	fi
}

install_peers
start_postgres

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	printf 'gofmt would change:\n%s\n' "$unformatted"
	exit 1
fi

log "go vet"
go vet ./...

log "cross-compile for the Raspberry Pi (linux/arm/v6, linux/arm64): the whole binary and the edge build"
for target in arm:6 arm64:; do
	for tags in "" edge; do
		CGO_ENABLED=0 GOOS=linux GOARCH=${target%%:*} GOARM=${target#*:} \
			go build -tags "$tags" -trimpath -ldflags='-s -w' -o /dev/null ./cmd/gridlink
	done
done
go vet -tags edge ./cmd/gridlink

log "go test -race"
go test -race -count=1 -timeout 30m ./...
