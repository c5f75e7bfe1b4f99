"""Run benchmark sections and print their numbers as Markdown, ready for docs/benchmarks.md."""

from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Any

SECTIONS = (
    "platform",
    "generation",
    "formats",
    "datasets",
    "socialproof",
    "graphql",
    "kpix",
    "coach",
    "devbizops",
    "identity",
    "console_assets",
    "console",
    "search",
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"


def render(section: str, results: dict[str, Any]) -> str:
    lines = [f"### {section}", "", "| measure | value |", "|---|---:|"]
    for name, value in results.items():
        lines.append(f"| {name} | {value:,.2f} |" if isinstance(value, float) else f"| {name} | {value} |")
    return "\n".join(lines) + "\n"


def main(names: list[str]) -> None:
    unknown = set(names) - set(SECTIONS)
    if unknown:
        sys.exit(f"unknown section(s): {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    print(f"Machine: {machine()}\n")
    for name in names or SECTIONS:
        module = importlib.import_module(f"bench.{name}")
        print(render(name, module.run()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
