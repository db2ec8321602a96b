#!/usr/bin/env bash
# Docker's MySQL image runs this after sql/init.sql and sql/set-passwords.sh: the databases and accounts of the
# stack's other tenants, each limited to its own database. Passwords come from the environment (.env).
set -euo pipefail
: "${DAGSTER_MYSQL_PASSWORD:?set DAGSTER_MYSQL_PASSWORD}"
: "${MLFLOW_MYSQL_PASSWORD:?set MLFLOW_MYSQL_PASSWORD}"

quote() {  # a MySQL string literal: backslashes and single quotes escaped
  local value=${1//\\/\\\\}
  printf "'%s'" "${value//\'/\'\'}"
}

export MYSQL_PWD="${MYSQL_ROOT_PASSWORD:-}"
mysql -uroot <<SQL
CREATE DATABASE IF NOT EXISTS dagster CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS mlflow CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'dagster'@'%' IDENTIFIED BY $(quote "$DAGSTER_MYSQL_PASSWORD");
CREATE USER IF NOT EXISTS 'mlflow'@'%' IDENTIFIED BY $(quote "$MLFLOW_MYSQL_PASSWORD");
GRANT ALL PRIVILEGES ON dagster.* TO 'dagster'@'%';
GRANT ALL PRIVILEGES ON mlflow.* TO 'mlflow'@'%';
SQL
echo "mysql-stack: databases dagster and mlflow ready"
