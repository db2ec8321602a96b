"""Start-up cost: importing the code location, against importing Dagster alone, each in a fresh interpreter.

    python -m benchmarks.load_time [--rounds 5]

Every process that loads the definitions pays the first figure: `dg dev`'s code server, the daemon, `dg check defs`
and each launched run's worker. `import dagster` is the floor no code location can go under. The third figure
adds what loading the champion imports on top (MLflow's scikit-learn flavor, and skops, MLflow's safe format for
scikit-learn models, which imports all of scikit-learn to list the types it trusts): the floor of a launched
`ingest_and_predict` run. Best of `--rounds` fresh interpreters each, in one run
(target: the code location within 1.5 s on the 2-core machine).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

IMPORTS = {
    "import dagster (the floor)": "import dagster",
    "import weather_assets.definitions": "import weather_assets.definitions",
    "+ what loading the champion imports": "import weather_assets.definitions, mlflow.sklearn, skops.io",
}
TIMED = "import time; started = time.perf_counter(); {statement}; print(time.perf_counter() - started)"


def seconds(statement: str) -> float:
    """The import's wall seconds in a new interpreter (the interpreter's own start-up left out)."""
    command = [sys.executable, "-c", TIMED.format(statement=statement)]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh interpreters per import; the best counts")
    args = parser.parse_args()
    best = {label: min(seconds(statement) for _ in range(args.rounds)) for label, statement in IMPORTS.items()}
    floor = best["import dagster (the floor)"]
    for label, value in best.items():
        print(f"{label:45s} {value:5.2f} s  ({value / floor:.2f}x the floor; best of {args.rounds})")
    print("target: the code location within 1.5 s")


if __name__ == "__main__":
    main()
