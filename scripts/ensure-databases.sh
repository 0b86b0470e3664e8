#!/usr/bin/env bash
# Makes sure the database servers the tests use are installed and running, for test machines
# (CI, a developer's VM) only:
#   PostgreSQL on 127.0.0.1:5432, where role "root" (superuser) logs in without a password;
#   MariaDB    on 127.0.0.1:3306, where user "root" logs in with an empty password.
# Installs postgresql / mariadb-server with apt-get when missing, starts them when they do not
# accept connections, waits for them (at most CAIRN_DB_WAIT_SECONDS, default 60), and grants
# that access when it is missing. Idempotent: on a ready machine it only checks. Runs as root.
# Exits non-zero, saying which server and why, when one can't be brought up.
set -euo pipefail

WAIT=${CAIRN_DB_WAIT_SECONDS:-60}

say() { echo "ensure-databases: $*"; }
die() {
  echo "ensure-databases: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs and starts services)"

pg_ok() { psql -h 127.0.0.1 -p 5432 -U root -d postgres -Atqc 'select 1' >/dev/null 2>&1; }
my_ok() { mariadb -h 127.0.0.1 -P 3306 -u root -e 'select 1' >/dev/null 2>&1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for NAME CHECK: polls CHECK every half second, for at most $WAIT seconds.
wait_for() {
  local name=$1 check=$2 deadline=$((SECONDS + WAIT))
  until "$check"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  say "$name is ready"
}

# --- install what is missing ------------------------------------------------------------
missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/sbin/mariadbd ] && command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-server mariadb-client)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
fi

# --- PostgreSQL ---------------------------------------------------------------------------
pg_socket_ok() { runuser -u postgres -- psql -p 5432 -Atqc 'select 1' >/dev/null 2>&1; }
if ! pg_ok; then
  version=$(find /etc/postgresql -mindepth 2 -maxdepth 2 -name main -printf '%h\n' 2>/dev/null | xargs -r -n1 basename | sort -V | tail -n 1)
  [ -n "$version" ] || die "PostgreSQL: no cluster under /etc/postgresql (is postgresql installed?)"
  if ! listening 5432; then
    say "starting PostgreSQL $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
      die "PostgreSQL: pg_ctlcluster $version main start failed (see /var/log/postgresql/)"
  fi
  wait_for "PostgreSQL (local socket)" pg_socket_ok ||
    die "PostgreSQL: no answer on 127.0.0.1:5432 within ${WAIT} s (see /var/log/postgresql/)"
  if ! pg_ok; then
    say "PostgreSQL: granting role root superuser, without a password from 127.0.0.1"
    runuser -u postgres -- psql -p 5432 -v ON_ERROR_STOP=1 -Atqc \
      "do \$\$ begin if not exists (select from pg_roles where rolname = 'root') then create role root superuser login; end if; end \$\$" ||
      die "PostgreSQL: could not create role root"
    hba=$(runuser -u postgres -- psql -p 5432 -Atqc 'show hba_file')
    if ! grep -Eq '^host[[:space:]]+all[[:space:]]+root[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
      # First match wins in pg_hba.conf: the line goes on top.
      { echo 'host all root 127.0.0.1/32 trust # added by cairn scripts/ensure-databases.sh'; cat "$hba"; } >"$hba.new"
      chown --reference="$hba" "$hba.new" && chmod --reference="$hba" "$hba.new" && mv "$hba.new" "$hba"
      runuser -u postgres -- psql -p 5432 -Atqc 'select pg_reload_conf()' >/dev/null
    fi
  fi
  wait_for "PostgreSQL (127.0.0.1:5432 as root)" pg_ok ||
    die "PostgreSQL: role root can't log in on 127.0.0.1:5432 (check $(runuser -u postgres -- psql -p 5432 -Atqc 'show hba_file' 2>/dev/null || echo pg_hba.conf))"
else
  say "PostgreSQL is ready"
fi

# --- MariaDB ------------------------------------------------------------------------------
my_socket_ok() { mariadb -u root -e 'select 1' >/dev/null 2>&1; }
if ! my_ok; then
  if ! listening 3306; then
    if [ ! -d /var/lib/mysql/mysql ]; then
      say "MariaDB: initialising /var/lib/mysql"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null || die "MariaDB: mariadb-install-db failed"
    fi
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    say "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql ||
      die "MariaDB: start-stop-daemon could not start /usr/sbin/mariadbd"
  fi
  wait_for "MariaDB (local socket)" my_socket_ok ||
    die "MariaDB: no answer on its socket within ${WAIT} s (see the journal or /var/log/mysql/)"
  if ! my_ok; then
    say "MariaDB: granting root an empty password from 127.0.0.1"
    mariadb -u root -e "create user if not exists 'root'@'127.0.0.1' identified by ''; grant all privileges on *.* to 'root'@'127.0.0.1' with grant option;" ||
      die "MariaDB: could not create root@127.0.0.1"
    # Without skip-name-resolve, 127.0.0.1 may be matched as root@localhost: let it in too,
    # keeping its unix_socket login.
    my_ok || mariadb -u root -e "alter user 'root'@'localhost' identified via unix_socket or mysql_native_password using password('')" ||
      die "MariaDB: could not give root@localhost an empty password"
  fi
  wait_for "MariaDB (127.0.0.1:3306 as root)" my_ok ||
    die "MariaDB: root can't log in on 127.0.0.1:3306 (is bind-address 127.0.0.1 or 0.0.0.0?)"
else
  say "MariaDB is ready"
fi
