#!/bin/sh
# First start: install the system tables, give root the password (or none)
# from any host and create the database, with a private server on a socket;
# then run mariadbd in the foreground as PID 1, listening on every address.
set -e
password=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
database=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
allow_empty=${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}
datadir=/var/lib/mysql
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld

if [ ! -d "$datadir/mysql" ]; then
  if [ -z "$password" ] && [ -z "$allow_empty" ]; then
    echo "idem-entrypoint: set MYSQL_ROOT_PASSWORD, or MYSQL_ALLOW_EMPTY_PASSWORD=yes" >&2
    exit 1
  fi
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
  socket=/run/mysqld/init.sock
  mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$socket" &
  init=$!
  for _ in $(seq 60); do mariadb-admin --socket="$socket" ping --silent 2>/dev/null && break; sleep 0.5; done
  escaped=$(printf '%s' "$password" | sed "s/'/''/g")
  {
    echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$escaped';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    [ -n "$database" ] && echo "CREATE DATABASE IF NOT EXISTS \`$database\`;"
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$socket" -uroot
  mariadb-admin --socket="$socket" -uroot shutdown
  wait "$init" || true
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 \
  --skip-name-resolve --innodb-flush-log-at-trx-commit=0 --max-connections=500 "$@"
