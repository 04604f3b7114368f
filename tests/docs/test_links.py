"""The repository stands alone: every relative link in its documents resolves to a
file inside it, and the API reference is here (docs/API.md, docs/openapi.json)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed]


def test_relative_links_stay_inside_the_repository() -> None:
    checked = 0
    for document in documents():
        for target in LINK.findall(document.read_text()):
            if re.match(r"[a-z]+:|#", target):  # a URL or an anchor
                continue
            resolved = (document.parent / target.split("#", 1)[0]).resolve()
            where = f"{document.relative_to(ROOT)} links {target}"
            assert resolved.is_relative_to(ROOT), f"{where}: outside the repository"
            assert resolved.exists(), f"{where}: no such file"
            checked += 1
    assert checked >= 5


def test_no_document_points_at_the_design_folder_beside_the_clone() -> None:
    for document in documents():
        text = document.read_text()
        assert "../shared/" not in text, document.relative_to(ROOT)


def test_the_api_reference_is_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/API.md)" in readme and "docs/openapi.json" in readme
    guide = (ROOT / "docs" / "API.md").read_text()
    # The one rule for lists, stated once.
    assert guide.count("X-Total-Count") >= 1 and 'rel="next"' in guide
