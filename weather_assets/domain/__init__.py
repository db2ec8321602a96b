"""The platform's domain in plain Python, without Dagster: KMA's wire format and its offline stand-in, the
stations, hours in KST, the features, the comfort rule, training, and the predictions table's shape.

Everything here is testable without an instance, a resource or a run; the Dagster code location
(`weather_assets.defs`) and the applications (`weather_assets.api`, `weather_assets.cli`) build on it.
"""
