"""First names labelled by sex, from the ``names`` package (US Census 1990 lists; MIT)."""

from __future__ import annotations

from seqmodels.data.corpora.installed import package_file
from seqmodels.data.readers.delimited import Record

FILES = {"female": "names/dist.female.first", "male": "names/dist.male.first"}


def names_gender() -> list[Record]:
    """``Record(name, "female"|"male")`` for the first names of the 1990 US Census.

    A name on both lists (e.g. "JAMES") is labelled with the list where its frequency
    (second column, % of that sex) is higher and appears once. Names are lower-cased,
    e.g. ``"mary"``; ``path``/``line`` point into the package's list.
    """
    best: dict[str, tuple[float, str, str, int]] = {}
    for label, rel in FILES.items():
        path = package_file("names", rel)
        for number, line in enumerate(path.read_text("ascii").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            name, freq = parts[0].lower(), float(parts[1])
            if name not in best or freq > best[name][0]:
                best[name] = (freq, label, str(path), number)
    return [
        Record(name, label, path, line) for name, (_, label, path, line) in sorted(best.items())
    ]
