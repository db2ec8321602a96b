"""The offline stand-in for KMA's API Hub, in plain Python: what the platform runs on without a key.

`observations` generates each station-hour's weather and writes it as KMA's ASOS and PM10 answers; `forecast`
writes ``getVilageFcst`` answers built on those observations; `hub` dispatches an endpoint's call to the one that
answers it. Same hour, same bytes, on any machine.
"""
