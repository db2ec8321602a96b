"""Software-defined assets, one module per stage: ingest (KMA to the lake), model, predictions."""
