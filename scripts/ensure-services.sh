#!/usr/bin/env bash
# Make sure what the tests talk to is there: redis-server, PostgreSQL on 127.0.0.1:5432
# (database `test`, trust auth) and Debian's chromium. Installs with apt-get when missing (as root).
set -euo pipefail
say() { echo "[services] $*" >&2; }
APT_UPDATED=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then say "missing $*; install it (needs root)"; return 1; fi
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v redis-server >/dev/null || apt_install redis-server
# redis-cli creates the test Cluster; Sentinels run as `redis-server --sentinel` (no separate binary).
command -v redis-cli >/dev/null || apt_install redis-tools
command -v openssl >/dev/null || apt_install openssl  # certificates for the Redis TLS test
command -v chromium >/dev/null || apt_install chromium
# nginx in front of two broadcaster nodes (tests/integration/scaling/test_nginx.py); the test
# starts its own nginx with a generated config, so the package's service is not needed.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx-light

if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then say "no PostgreSQL cluster found"; exit 1; fi
  conf=/etc/postgresql/$version/main
  if ! grep -q "^host all all 127.0.0.1/32 trust" "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$conf/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
  for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -c 'create database test' >/dev/null 2>&1 || \
    su postgres -c "psql -c 'create database test'" >/dev/null
fi
say "redis-server, nginx, PostgreSQL (127.0.0.1:5432/test) and chromium are available"
