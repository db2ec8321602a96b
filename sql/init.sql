-- The predictions database. Docker's MySQL image runs this file on first start; on an existing server:
--   mysql -uroot -p < sql/init.sql   then   sql/set-passwords.sh
-- Runs on MySQL 8 and MariaDB 10.11, and again without harm (IF NOT EXISTS; the grants end as below).
CREATE DATABASE IF NOT EXISTS weather_mlops CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE weather_mlops;

-- The same definition as weather_assets/domain/tables.py, from which the IO manager creates the table
-- when it is missing; a test applies this file to a real server and compares the two column by column.
-- One row per KST hour and station: writing an hour again updates its rows (the upsert's unique key).
-- created_at is set on the first write and never changed; updated_at on every write; both UTC.
-- The lineage columns (dagster_run_id .. input_sha256, in both tables) are nullable: a table created before them
-- is given them in place by the IO manager, or by sql/migrations/001_lineage.sql; its rows keep NULL there.
CREATE TABLE IF NOT EXISTS weather_predictions (
  id BIGINT NOT NULL AUTO_INCREMENT,
  comfort_score DOUBLE NOT NULL,
  temperature DOUBLE NULL,
  humidity DOUBLE NULL,
  precipitation DOUBLE NULL,
  pm10 DOUBLE NULL,
  wind_speed DOUBLE NULL,
  pressure DOUBLE NULL,
  prediction_datetime DATETIME(6) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  region VARCHAR(32) NULL,
  station_id INT NOT NULL,
  model_name VARCHAR(64) NOT NULL,
  dagster_run_id VARCHAR(64) NULL,
  model_version VARCHAR(32) NULL,
  mlflow_run_id VARCHAR(64) NULL,
  input_object VARCHAR(255) NULL,
  input_sha256 CHAR(64) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_prediction (prediction_datetime, station_id),
  KEY ix_weather_predictions_prediction_datetime (prediction_datetime),
  KEY ix_weather_predictions_region (region),
  KEY ix_weather_predictions_updated_at (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The same definition as weather_assets/domain/tables.py (compared by the same test): the comfort
-- forecast of each station and forecast hour, once per forecast issue (issued_at, KST).
CREATE TABLE IF NOT EXISTS weather_forecasts (
  id BIGINT NOT NULL AUTO_INCREMENT,
  forecast_datetime DATETIME(6) NOT NULL,
  station_id INT NOT NULL,
  issued_at DATETIME(6) NOT NULL,
  lead_hours INT NOT NULL,
  region VARCHAR(32) NULL,
  comfort_score DOUBLE NOT NULL,
  temperature DOUBLE NULL,
  humidity DOUBLE NULL,
  precipitation DOUBLE NULL,
  pm10 DOUBLE NULL,
  wind_speed DOUBLE NULL,
  pressure DOUBLE NULL,
  forecast_inputs VARCHAR(128) NOT NULL,
  carried_inputs VARCHAR(128) NOT NULL,
  model_name VARCHAR(64) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  dagster_run_id VARCHAR(64) NULL,
  model_version VARCHAR(32) NULL,
  mlflow_run_id VARCHAR(64) NULL,
  input_object VARCHAR(255) NULL,
  input_sha256 CHAR(64) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_forecast (forecast_datetime, station_id, issued_at),
  KEY ix_weather_forecasts_issued_at (issued_at),
  KEY ix_weather_forecasts_station_forecast (station_id, forecast_datetime),
  KEY ix_weather_forecasts_updated_at (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Accounts, least privilege: the platform upserts rows (INSERT ... ON DUPLICATE KEY UPDATE) and never deletes
-- one, the app only reads them. They are created locked and without a password: no password is ever committed.
-- sql/set-passwords.sh sets them from the deployment's secrets (WEATHER_DB_APP_PASSWORD,
-- WEATHER_DB_READER_PASSWORD) and unlocks the accounts. '%' lets them connect from any host that reaches the
-- server (in the compose stack, the stack's network and the 127.0.0.1-only published port); the README says how
-- to narrow it.
CREATE USER IF NOT EXISTS 'weather_app'@'%' ACCOUNT LOCK;
GRANT SELECT, INSERT, UPDATE ON weather_mlops.* TO 'weather_app'@'%';
-- An earlier version of this file granted DELETE too: taken back, so that running the file again on such a server
-- leaves the grants above. REVOKE fails on a privilege not held (MariaDB has no REVOKE IF EXISTS), so it is granted
-- first.
GRANT DELETE ON weather_mlops.* TO 'weather_app'@'%';
REVOKE DELETE ON weather_mlops.* FROM 'weather_app'@'%';
CREATE USER IF NOT EXISTS 'weather_reader'@'%' ACCOUNT LOCK;
GRANT SELECT ON weather_mlops.* TO 'weather_reader'@'%';
