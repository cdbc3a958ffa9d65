"""Runs every benchmark on every backend: `python -m benchmarks.run`."""

import pkgutil
import sys

import benchmarks
from benchmarks import _common


def main():
    names = sorted(
        m.name
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if not m.name.startswith("_") and m.name != "run"
    )
    status = 0
    for name in names:
        status |= _common.run_per_backend(f"benchmarks.{name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
