"""The documentation site builds in strict mode, and its API reference covers the package.

Strict mode turns every warning into a failure: a link to a missing page or anchor, a page
left out of the navigation, a docstring the parser cannot read, an unresolved
cross-reference. The build goes into a temporary directory and reads only tracked sources.
"""

from __future__ import annotations

import html
import importlib
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[dev]'")
pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed: pip install -e '.[dev]'")

import seqmodels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Packages whose every module the API reference must document.
DOCUMENTED_PACKAGES = ("seqmodels.cells", "seqmodels.layers", "seqmodels.tasks", "seqmodels.data")
#: Lab history that no page of the site may contain (docstrings included).
HISTORY = re.compile(r"issue [0-9]|session|this week|tried and dropped", flags=re.I)


def package_modules(name: str) -> list[str]:
    """``name`` and every module below it, as the import system sees them."""
    package = importlib.import_module(name)
    return [name, *(info.name for info in pkgutil.walk_packages(package.__path__, f"{name}."))]


def inventory(site: Path) -> set[str]:
    """The names in the site's Sphinx inventory (``objects.inv``, written by mkdocstrings)."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then the zlib-compressed body
        header_end = data.index(b"\n", header_end) + 1
    body = zlib.decompress(data[header_end:]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-8000:]}"
    return out


def test_site_builds_in_strict_mode(site):
    for page in (
        "index.html",
        "backends/index.html",
        "api/layers/index.html",
        "changelog/index.html",
    ):
        assert (site / page).is_file(), page


def test_api_reference_lists_every_public_name(site):
    names = inventory(site)
    missing = [
        f"seqmodels.{name}" for name in seqmodels.__all__ if f"seqmodels.{name}" not in names
    ]
    assert not missing, f"not in the API reference: {missing}"


@pytest.mark.parametrize("package", DOCUMENTED_PACKAGES)
def test_api_reference_lists_every_module(site, package):
    names = inventory(site)
    missing = [module for module in package_modules(package) if module not in names]
    assert not missing, f"not in the API reference: {missing}"


def test_no_page_of_the_site_holds_lab_history(site):
    found = []
    for page in sorted(site.rglob("*.html")):
        text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
        found += [f"{page.relative_to(site)}: {m.group(0)!r}" for m in HISTORY.finditer(text)]
    assert not found, found
