"""Run every benchmark, or those named: python -m benchmarks prepare load."""

import importlib
import sys

# Each module has `run() -> None`, which prints its figures beside the targets.
MODULES: list[str] = [
    "prepare",
    "status",
    "load",
    "execute_batch",
    "simulator",
    "execute",
]


def main(argv: list[str]) -> None:
    """Run the benchmarks named in `argv`, or all of them."""
    chosen = argv or MODULES
    for name in chosen:
        if name not in MODULES:
            sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(MODULES)}")
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").run()


if __name__ == "__main__":
    main(sys.argv[1:])
