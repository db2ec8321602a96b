"""``python -m weather_assets``: the main command (`weather_assets.cli`)."""

import sys

from weather_assets.cli import main

if __name__ == "__main__":
    sys.exit(main())
