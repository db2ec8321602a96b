"""Resources, one module each: the lake (local folder or S3), the KMA client, the MLflow model registry and
tracking; and the predictions table's IO manager, a package of three (`predictions_db`).
"""
