"""BM25 over chunk texts (bm25s), with a tokenizer that treats curly quotes and dashes as ASCII."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np

_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"',
                            "\u201d": '"', "\u201e": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-",
                            "\u2012": "-", "\u00a0": " "})
_TOKEN = re.compile(r"\w+(?:[-']\w+)*", re.UNICODE)
STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its "
    "this that these those there their they them he she his her him we our you your i me my do does did "
    "has have had not no so than then too very can could will would shall should may might must what "
    "which who whom whose when where why how into about over after before also just such s".split()
)


def normalize_text(text: str) -> str:
    """NFKC, curly quotes to straight, en/em dashes to hyphens."""
    return unicodedata.normalize("NFKC", text).translate(_TRANSLATE)


def _stem(tok: str) -> str:
    # A light plural/possessive strip: "S-400s" -> "s-400", "systems" -> "system", "Russia's" -> "russia".
    if tok.endswith("'s"):
        tok = tok[:-2]
    if len(tok) > 3 and tok.endswith("ies"):
        return tok[:-3] + "y"
    if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss"):
        return tok[:-1]
    return tok


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed tokens without stopwords; hyphenated words also give their parts."""
    out = []
    for m in _TOKEN.finditer(normalize_text(text).lower()):
        tok = _stem(m.group())
        if tok in STOPWORDS:
            continue
        out.append(tok)
        if "-" in tok:
            out.extend(p for p in (_stem(x) for x in tok.split("-")) if p and p not in STOPWORDS)
    return out


class LexicalIndex:
    """A BM25 index over a list of texts; saved as bm25s plain files (JSON + .npy, no pickle)."""

    def __init__(self, bm25) -> None:
        self._bm25 = bm25
        self._vocab = bm25.vocab_dict

    @classmethod
    def build(cls, texts: list[str]) -> "LexicalIndex":
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index([tokenize(t) or [""] for t in texts], show_progress=False)
        return cls(bm25)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = False) -> "LexicalIndex":
        import bm25s

        return cls(bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False, allow_pickle=False))

    @property
    def size(self) -> int:
        return int(self._bm25.scores["num_docs"])

    def knows(self, word: str) -> bool:
        """Whether the indexed text holds ``word`` (after tokenisation; a hyphenated word is known
        when the whole or each of its parts is: "Turkish-Russian")."""
        toks = tokenize(word)
        if not toks or toks[0] in self._vocab:
            return True
        # tokenize gives a hyphenated word whole, then its parts
        return "-" in toks[0] and len(toks) > 1 and all(t in self._vocab for t in toks[1:])

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (rows, scores), best first; rows with a zero score are left out."""
        toks = [t for t in tokenize(query) if t in self._vocab]
        if not toks:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.asarray(self._bm25.get_scores(toks), dtype=np.float32)
        k = min(k, scores.shape[0])
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return top.astype(np.int64), scores[top]
