"""Resources, one module each: the lake (local folder or S3), the KMA client, the MLflow model registry and
tracking; and the predictions and forecasts tables' database resource and its IO manager, a package
(`predictions_db`).
"""
