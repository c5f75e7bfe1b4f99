"""``docs/security.md`` names a test for every threat; each test it names must exist, so the list cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"`(?P<file>[\w/]+\.py)?(?:::(?P<test>\w+))?`")


def referenced_tests() -> list[tuple[str, str | None]]:
    """The ``file::test`` references of each table's last column; ``::test`` alone belongs to the file before it."""
    found: list[tuple[str, str | None]] = []
    for line in (ROOT / "docs" / "security.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("threat", "---"):
            continue
        current = None
        for match in REFERENCE.finditer(cells[-1]):
            current = match["file"] or current
            if current:
                found.append((current, match["test"]))
    return found


def test_every_test_the_security_doc_names_exists() -> None:
    references = referenced_tests()
    assert len(references) > 50
    missing = []
    for file, test in references:
        path = ROOT / "tests" / file
        if not path.exists():
            missing.append(file)
        elif test and not re.search(rf"^(async )?def {test}\(", path.read_text(), re.M):
            missing.append(f"{file}::{test}")
    assert missing == []
