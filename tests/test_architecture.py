"""The package's layering (docs/architecture.md), checked by the project's own tests.

* No module imports from a package above its own, statically (every ``import`` statement,
  lazy ones inside functions included) and at run time (importing a package in a fresh
  interpreter loads nothing above it).
* No block of six or more lines is repeated inside the core (ground floor, cells, kernels,
  layers), verbatim or with renamed identifiers, strings and numbers.
"""

from __future__ import annotations

import ast
import io
import keyword
import subprocess
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seqmodels"

#: package -> level; a module may import from its own level and the levels below.
LEVELS = {
    "core": 0,
    "cells": 1,
    "kernels": 2,
    "layers": 3,
    "data": 4,
    "tasks": 5,
    "experiment": 6,
    "gradcheck": 7,  # tools beside the CLI: may use anything below
    "diagnostics": 7,
    "cli": 8,
}
CORE = ("core", "cells", "kernels", "layers")
MIN_LINES = 6
# Python >= 3.12 splits f-strings into several tokens; 3.11 has one STRING token.
STRING_STARTS = {tokenize.STRING, getattr(tokenize, "FSTRING_START", tokenize.STRING)}
STRING_PARTS = {
    getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)
}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "seqmodels" else None


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def source_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem != "__init__")


def test_every_package_has_a_level():
    packages = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in source_files()}
    assert packages - {"conf"} <= set(LEVELS), packages - set(LEVELS)


def test_no_module_imports_from_a_package_above_it():
    upward = []
    for path in source_files():
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if own == "conf":
            continue
        for line, module in imported_modules(path):
            target = package_of(module)
            if module == "seqmodels" or (target and LEVELS.get(target, 99) > LEVELS[own]):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not upward, "imports from a package above:\n" + "\n".join(upward)


@pytest.mark.parametrize("package", [p for p in LEVELS if p not in ("cli", "gradcheck")])
def test_importing_a_package_loads_nothing_above_it(package):
    code = (
        f"import sys, seqmodels.{package}\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('seqmodels.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    loaded = {package_of(m) for m in result.stdout.split()}
    above = {p for p in loaded if p and LEVELS.get(p, 99) > LEVELS[package]}
    assert not above, f"importing seqmodels.{package} loaded {sorted(above)}"


def normalised_lines(path: Path) -> list[tuple[int, str]]:
    """Code lines with names, strings and numbers replaced by placeholders.

    Blank lines, comments, docstrings, function signatures and imports are left out; a line
    made only of
    punctuation and keywords (``else:``, ``)``) does not count as one of the six.
    """
    source = path.read_text()
    docstrings = set()  # and signatures: restating a protocol's arguments is not a copy
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                docstrings.update(range(node.lineno, node.end_lineno + 1))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            docstrings.update(range(start, node.body[0].lineno))
    lines: dict[int, list[str]] = defaultdict(list)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        line = tok.start[0]
        if line in docstrings or tok.type in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            continue
        if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
            lines[line].append("N")
        elif tok.type == tokenize.NUMBER:
            lines[line].append("0")
        elif tok.type in STRING_STARTS:
            lines[line].append("S")
        elif tok.type in STRING_PARTS:
            continue
        else:
            lines[line].append(tok.string)
    result = []
    for number, tokens in sorted(lines.items()):
        text = " ".join(tokens)
        if tokens[0] in ("import", "from") or "N" not in tokens:
            continue
        result.append((number, text))
    return result


def test_no_repeated_blocks_in_the_core():
    seen: dict[tuple[str, ...], tuple[Path, int]] = {}
    repeats = []
    for package in CORE:
        for path in sorted((PACKAGE / package).rglob("*.py")):
            lines = normalised_lines(path)
            for i in range(len(lines) - MIN_LINES + 1):
                window = tuple(text for _, text in lines[i : i + MIN_LINES])
                if len(set(window)) < 3:  # runs of one repeated shape (argument lists)
                    continue
                where = (path, lines[i][0])
                first = seen.setdefault(window, where)
                if first != where and not (first[0] == path and first[1] >= lines[i - 1][0]):
                    repeats.append(
                        f"{path.relative_to(PACKAGE.parent)}:{lines[i][0]} repeats "
                        f"{first[0].relative_to(PACKAGE.parent)}:{first[1]}"
                    )
    assert not repeats, "blocks of six or more lines repeated in the core:\n" + "\n".join(repeats)
