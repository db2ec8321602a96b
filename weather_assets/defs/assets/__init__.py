"""Software-defined assets, one module per stage: ingest (KMA to the lake), model, predictions, forecasts and
their skill; `metadata` holds what their materializations share."""
