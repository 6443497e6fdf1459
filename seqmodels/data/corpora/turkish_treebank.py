"""The Turkish web and Wikipedia treebanks (CoNLL-U) of ``turkish-treebanks`` (Apache-2.0)."""

from __future__ import annotations

from pathlib import Path

from seqmodels.data.corpora.installed import package_file

PARTS = {"web": "data/web.conllu", "wiki": "data/wiki.conllu"}


def turkish_treebank_files(parts: tuple[str, ...] = ("web", "wiki")) -> list[Path]:
    """Paths of the installed CoNLL-U files (4,851 sentences, 14 UPOS tags in all)."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown treebank part(s) {unknown}; expected {list(PARTS)}")
    return [package_file("turkish-treebanks", PARTS[p]) for p in parts]
