"""The platform's domain in plain Python, without Dagster: the stations, hours in KST, the features built from
KMA's answers (`weather_assets.kma`), the comfort rule, training, and the tables' shapes.

Everything here is testable without an instance, a resource or a run; the Dagster code location
(`weather_assets.defs`) and the applications (`weather_assets.api`, `weather_assets.cli`) build on it.
"""
