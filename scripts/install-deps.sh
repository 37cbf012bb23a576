#!/usr/bin/env bash
# install-deps.sh — make a fresh Debian 12 machine (Go 1.26 only) able to run
# every hubjobs test, and do nothing on a machine that already can.
#
#   scripts/install-deps.sh            # all: toolchain, chromium, postgres, dex
#   scripts/install-deps.sh dex        # one or more of: toolchain chromium postgres dex
#
# Why one script: the apt packages that are missing are collected first and
# installed with ONE `apt-get update` + ONE `apt-get install`, which is what
# dominates the cost on a fresh machine. Each step prints how long it took
# (figures measured on the project machine are in scripts/README.md).
#
# Environment (all optional):
#   HUBJOBS_CHROMIUM   browser the e2e tests drive (default /usr/bin/chromium)
#   HUBJOBS_DEX_BIN    where the Dex binary is built (default .cache/bin/dex)
#   CI=true            allows switching a freshly found PostgreSQL to trust
#                      auth on loopback (never done silently on a dev machine)
set -euo pipefail

root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chromium_bin="${HUBJOBS_CHROMIUM:-/usr/bin/chromium}"
dex_bin="${HUBJOBS_DEX_BIN:-$root_dir/.cache/bin/dex}"
pg_host=127.0.0.1
pg_port=5432
pg_db=test

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# as_root runs a command as root: directly when we are root, through sudo
# when it exists; otherwise it fails with the command we could not run.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root for: $* (not root and no sudo)"
	fi
}

# as_postgres runs a command as the postgres OS user (peer auth on the socket),
# which works whatever pg_hba.conf says for TCP.
as_postgres() {
	if [ "$(id -un)" = postgres ]; then
		"$@"
	elif [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		sudo -u postgres "$@"
	fi
}

apt_install() {
	local t0
	t0="$(now)"
	log "apt-get update"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
	log "apt packages installed in $(elapsed "$t0"): $*"
}

# missing_packages prints the Debian packages the requested steps still need.
missing_packages() {
	local step
	for step in "$@"; do
		case "$step" in
		toolchain)
			# go test -race needs cgo, hence a C compiler; git for the
			# generated-code check; make for the test command itself.
			command -v gcc >/dev/null 2>&1 || echo gcc libc6-dev
			command -v git >/dev/null 2>&1 || echo git
			command -v make >/dev/null 2>&1 || echo make
			;;
		chromium)
			[ -x "$chromium_bin" ] || echo chromium fonts-liberation
			;;
		postgres)
			command -v pg_ctlcluster >/dev/null 2>&1 || echo postgresql
			;;
		esac
	done
}

pg_query() { # pg_query DB SQL — over TCP as the tests connect, never prompting
	psql -h "$pg_host" -p "$pg_port" -U postgres -d "$1" -w -X -q -tAc "$2"
}

pg_cluster_version() { # the newest configured cluster version, if any
	ls /etc/postgresql 2>/dev/null | sort -V | tail -n1
}

ensure_postgres() {
	local t0 version hba installed_now=$1
	t0="$(now)"
	version="$(pg_cluster_version)"
	if [ -z "$version" ] || [ ! -d "/etc/postgresql/$version/main" ]; then
		version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
		[ -n "$version" ] || die "postgresql is installed but no server version found under /usr/lib/postgresql"
		log "creating PostgreSQL $version cluster 'main'"
		as_root pg_createcluster "$version" main >/dev/null
	fi
	if ! pg_isready -q -h "$pg_host" -p "$pg_port"; then
		log "starting PostgreSQL $version/main"
		as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
	fi
	local i
	for i in $(seq 1 60); do
		pg_isready -q -h "$pg_host" -p "$pg_port" && break
		[ "$i" -eq 60 ] && die "PostgreSQL does not accept connections on $pg_host:$pg_port after 30 s"
		sleep 0.5
	done
	if ! pg_query postgres 'SELECT 1' >/dev/null 2>&1; then
		# Debian's default is scram-sha-256 on 127.0.0.1. The tests use trust on
		# loopback (docs/testing.md); change it only on a machine we set up
		# ourselves or in CI, never behind a developer's back.
		if [ "$installed_now" != 1 ] && [ "${CI:-}" != true ]; then
			die "PostgreSQL on $pg_host:$pg_port refuses user postgres without a password; allow 'host all all 127.0.0.1/32 trust' in pg_hba.conf (or rerun with CI=true to let this script do it)"
		fi
		hba="/etc/postgresql/$version/main/pg_hba.conf"
		log "switching $hba to trust auth on loopback (test machine)"
		as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
		as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
		sleep 0.5
		pg_query postgres 'SELECT 1' >/dev/null || die "PostgreSQL still refuses user postgres on $pg_host:$pg_port"
	fi
	if [ "$(pg_query postgres "SELECT 1 FROM pg_database WHERE datname = '$pg_db'")" != 1 ]; then
		log "creating database $pg_db"
		pg_query postgres "CREATE DATABASE $pg_db" >/dev/null
	fi
	log "PostgreSQL ready on $pg_host:$pg_port (db $pg_db) in $(elapsed "$t0")"
}

# ensure_dex builds Dex from the pinned tool module in tools/dex. A stamp next
# to the binary records what it was built from (tools/dex/go.mod, go.sum and
# the Go version), so an unchanged pin costs nothing and a changed one rebuilds.
ensure_dex() {
	local t0 want stamp="$dex_bin.stamp" tmp
	t0="$(now)"
	want="$(cat "$root_dir/tools/dex/go.mod" "$root_dir/tools/dex/go.sum" | sha256sum | cut -d' ' -f1) $(go env GOVERSION)"
	if [ -x "$dex_bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		log "dex up to date: $dex_bin"
		return
	fi
	log "building dex into $dex_bin (cold: about 1.5 min)"
	mkdir -p "$(dirname "$dex_bin")"
	tmp="$dex_bin.tmp.$$"
	(cd "$root_dir/tools/dex" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags='-s -w' -o "$tmp" github.com/dexidp/dex/cmd/dex)
	mv -f "$tmp" "$dex_bin" # atomic: a concurrent run never sees half a binary
	printf '%s\n' "$want" >"$stamp"
	log "dex built in $(elapsed "$t0")"
}

main() {
	local steps=("$@") pkgs installed_pg=0 t0
	[ ${#steps[@]} -gt 0 ] || steps=(toolchain chromium postgres dex)
	t0="$(now)"
	pkgs="$(missing_packages "${steps[@]}" | xargs)"
	if [ -n "$pkgs" ]; then
		[[ " $pkgs " == *" postgresql "* ]] && installed_pg=1
		apt_install $pkgs
	fi
	local step
	for step in "${steps[@]}"; do
		case "$step" in
		toolchain) ;;
		chromium) [ -x "$chromium_bin" ] || die "chromium not found at $chromium_bin after install" ;;
		postgres) ensure_postgres "$installed_pg" ;;
		dex) ensure_dex ;;
		*) die "unknown step '$step' (toolchain chromium postgres dex)" ;;
		esac
	done
	log "all set in $(elapsed "$t0")"
}

main "$@"
