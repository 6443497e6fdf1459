"""Vocabularies of tokens (with special tokens) and label sets (without).

Special tokens have stable ids in every :class:`Vocabulary`: ``<pad>`` = 0,
``<unk>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3. A vocabulary is stored as a plain
JSON-able dict (:meth:`Vocabulary.state_dict`), so it travels inside a Lightning
checkpoint and generation/evaluation use the same mapping as training.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from seqmodels.data.errors import DataError
from seqmodels.data.tokenizers import WORD_PATTERN, detokenize, get_tokenizer

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
_FORMAT = "seqmodels.vocabulary/1"


class Vocabulary:
    """A token <-> id mapping with a tokeniser, at character or word level.

    ``level`` is ``"char"``, ``"word"`` (words and punctuation by regex) or
    ``"whitespace"``. Unknown tokens encode to :attr:`unk_id`.

    Example:
        >>> v = Vocabulary.build(["hello", "help"], level="char")
        >>> v.encode("hex")
        [6, 5, 1]
        >>> v.decode(v.encode("help", add_bos=True, add_eos=True))
        'help'
        >>> Vocabulary.from_state_dict(v.state_dict()) == v
        True
    """

    pad_id = 0
    unk_id = 1
    bos_id = 2
    eos_id = 3

    def __init__(
        self,
        tokens: Iterable[str] = (),
        *,
        level: str = "word",
        lowercase: bool = False,
        pattern: str = WORD_PATTERN,
    ) -> None:
        self.level = level
        self.lowercase = lowercase
        self.pattern = pattern
        self._tokenizer = get_tokenizer(level, pattern)
        self.itos: list[str] = list(SPECIALS)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        for token in tokens:
            self.add(token)

    # ----------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        texts: Iterable[str | Sequence[str]],
        *,
        level: str = "word",
        lowercase: bool = False,
        min_freq: int = 1,
        max_size: int | None = None,
        pattern: str = WORD_PATTERN,
    ) -> Vocabulary:
        """Build from texts (tokenised here) or token lists.

        Tokens are ordered by descending frequency, ties by the token itself, so the
        ids do not depend on the order of ``texts``. ``max_size`` counts the four
        special tokens.
        """
        vocab = cls(level=level, lowercase=lowercase, pattern=pattern)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(vocab.tokenize(text))
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_freq and t not in vocab.stoi),
            key=lambda t: (-counts[t], t),
        )
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(SPECIALS))]
        for token in ranked:
            vocab.add(token)
        return vocab

    def add(self, token: str) -> int:
        """Add ``token`` if new; return its id."""
        if token not in self.stoi:
            self.stoi[token] = len(self.itos)
            self.itos.append(token)
        return self.stoi[token]

    # ------------------------------------------------------------ conversions
    def tokenize(self, text: str | Sequence[str]) -> list[str]:
        """Tokenise a string (or pass a token list through), lower-casing if asked."""
        tokens = self._tokenizer(text) if isinstance(text, str) else list(text)
        return [t.lower() for t in tokens] if self.lowercase else tokens

    def encode(
        self, text: str | Sequence[str], *, add_bos: bool = False, add_eos: bool = False
    ) -> list[int]:
        """Token ids of ``text``; unknown tokens map to :attr:`unk_id`."""
        ids = [self.stoi.get(t, self.unk_id) for t in self.tokenize(text)]
        if add_bos:
            ids.insert(0, self.bos_id)
        if add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str | list[str]:
        """Tokens of ``ids``: a string for ``level="char"``, else a list of tokens.

        With ``skip_special`` padding and BOS are dropped and decoding stops at EOS.
        """
        tokens = self.lookup(ids, skip_special=skip_special)
        return "".join(tokens) if self.level == "char" else tokens

    def decode_text(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """Like :meth:`decode` but always a string (tokens joined by a space for words)."""
        return detokenize(self.lookup(ids, skip_special=skip_special), self.level)

    def lookup(self, ids: Iterable[int], *, skip_special: bool = True) -> list[str]:
        """The token of each id (``<unk>`` for out-of-range ids)."""
        out = []
        for i in ids:
            i = int(i)
            if skip_special:
                if i == self.eos_id:
                    break
                if i in (self.pad_id, self.bos_id):
                    continue
            out.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return out

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.state_dict() == other.state_dict()

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, level={self.level!r}, lowercase={self.lowercase})"

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict from which :meth:`from_state_dict` rebuilds this vocabulary."""
        return {
            "format": _FORMAT,
            "level": self.level,
            "lowercase": self.lowercase,
            "pattern": self.pattern,
            "tokens": list(self.itos),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`state_dict` output."""
        if state.get("format") != _FORMAT:
            raise ValueError(f"not a vocabulary state (format {state.get('format')!r})")
        tokens = list(state["tokens"])
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary state must start with the special tokens {SPECIALS}")
        return cls(
            tokens[len(SPECIALS) :],
            level=state["level"],
            lowercase=state["lowercase"],
            pattern=state.get("pattern", WORD_PATTERN),
        )

    def save(self, path: str | Path) -> None:
        """Write :meth:`state_dict` to ``path`` as JSON (UTF-8)."""
        Path(path).write_text(json.dumps(self.state_dict(), ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`."""
        return cls.from_state_dict(json.loads(Path(path).read_text("utf-8")))


class Labels:
    """Class names <-> ids ``0..C-1`` (no special tokens), for classes and tags.

    Example:
        >>> labels = Labels(["female", "male"])
        >>> labels.encode("male"), labels.decode(0), len(labels)
        (1, 'female', 2)
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names: list[str] = list(dict.fromkeys(names))
        self.index = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def build(cls, labels: Iterable[str]) -> Labels:
        """Sorted distinct labels, so ids do not depend on the order seen."""
        return cls(sorted(set(labels)))

    def encode(self, label: str, *, path: str | None = None, line: int | None = None) -> int:
        """The id of ``label``; a :class:`DataError` naming file/line if it is unknown."""
        try:
            return self.index[label]
        except KeyError:
            shown = ", ".join(map(repr, self.names[:20])) + (" ..." if len(self) > 20 else "")
            raise DataError(
                f"unknown label {label!r}; expected one of {shown}", path=path, line=line
            ) from None

    def decode(self, i: int) -> str:
        """The label with id ``i``."""
        return self.names[int(i)]

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, label: object) -> bool:
        return label in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Labels) and self.names == other.names

    def __repr__(self) -> str:
        return f"Labels({self.names!r})"

    def state_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"labels": [...]}``."""
        return {"labels": list(self.names)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Labels:
        """Rebuild from :meth:`state_dict` output."""
        return cls(state["labels"])
