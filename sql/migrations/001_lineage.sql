-- Lineage (issue 23): the nullable columns that name, on every row, the Dagster run that wrote it, the model's
-- registry version and the MLflow run that trained it, and the lake object it was computed from with its SHA-256.
-- The IO manager adds them itself when its account may ALTER the tables; with init.sql's weather_app (SELECT,
-- INSERT, UPDATE) it cannot and names this file instead. Run it once, as root or another account that may ALTER:
--   mysql -uroot -p weather_mlops < sql/migrations/001_lineage.sql
-- Runs on MySQL 8 and MariaDB 10.11; a nullable column added at the end is instant there (no table copy), and the
-- rows keep their values, with NULL lineage. A second run fails with "Duplicate column name" and changes nothing.
-- The same columns as weather_assets/domain/tables.py (lineage_columns) and sql/init.sql.
ALTER TABLE weather_predictions
  ADD COLUMN dagster_run_id VARCHAR(64) NULL,
  ADD COLUMN model_version VARCHAR(32) NULL,
  ADD COLUMN mlflow_run_id VARCHAR(64) NULL,
  ADD COLUMN input_object VARCHAR(255) NULL,
  ADD COLUMN input_sha256 CHAR(64) NULL;

ALTER TABLE weather_forecasts
  ADD COLUMN dagster_run_id VARCHAR(64) NULL,
  ADD COLUMN model_version VARCHAR(32) NULL,
  ADD COLUMN mlflow_run_id VARCHAR(64) NULL,
  ADD COLUMN input_object VARCHAR(255) NULL,
  ADD COLUMN input_sha256 CHAR(64) NULL;
