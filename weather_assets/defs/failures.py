"""The failure of a step whose input another asset has not written yet, said the same way by every asset."""

import dagster as dg


def materialize_first(asset: str, problem: object) -> dg.Failure:
    """`problem` (what is missing, where) and what mends it: materializing `asset`. Not retried: waiting cannot."""
    return dg.Failure(f"{problem}: materialize {asset} first", allow_retries=False)
