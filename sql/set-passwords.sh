#!/usr/bin/env bash
# Sets the passwords of the accounts that sql/init.sql creates (locked, without a password) and unlocks them.
# Passwords come from the environment, never from a file in the repository:
#   WEATHER_DB_APP_PASSWORD     weather_app: SELECT, INSERT, UPDATE on weather_mlops (the platform)
#   WEATHER_DB_READER_PASSWORD  weather_reader: SELECT on weather_mlops (the app and its read API)
# Connects as root with the mysql client; MYSQL_ROOT_PASSWORD (as in Docker's MySQL image), MYSQL_HOST and
# MYSQL_TCP_PORT are honoured. Docker's MySQL image runs it after init.sql from /docker-entrypoint-initdb.d.
set -euo pipefail

: "${WEATHER_DB_APP_PASSWORD:?set WEATHER_DB_APP_PASSWORD}"
: "${WEATHER_DB_READER_PASSWORD:?set WEATHER_DB_READER_PASSWORD}"

quote() {  # a MySQL string literal: backslashes and single quotes escaped
  local value=${1//\\/\\\\}
  printf "'%s'" "${value//\'/\'\'}"
}

export MYSQL_PWD="${MYSQL_ROOT_PASSWORD:-}"
mysql -uroot <<SQL
ALTER USER 'weather_app'@'%' IDENTIFIED BY $(quote "$WEATHER_DB_APP_PASSWORD") ACCOUNT UNLOCK;
ALTER USER 'weather_reader'@'%' IDENTIFIED BY $(quote "$WEATHER_DB_READER_PASSWORD") ACCOUNT UNLOCK;
SQL
echo "set-passwords: weather_app and weather_reader unlocked"
