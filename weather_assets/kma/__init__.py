"""What KMA sends, in plain Python: the API Hub's answers and what their fields mean.

`fields` (each ASOS and PM10 field and its missing codes), `wire` (the text format of the observation answers:
checking, splitting, regrouping, parsing, writing), `forecast` (the short-term forecast's issues and JSON answers),
`forecast_values` (its text values as numbers) and `grid` (KMA's 5 km forecast grid). It imports nothing else
of the project (a test holds it to that): the domain (`weather_assets.domain`) builds on it.
"""
