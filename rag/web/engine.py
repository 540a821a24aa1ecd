"""The chat page's engine: the index of one docs folder, built, reloaded and added to under one lock.

No UI here (gradio is never imported): ``rag.web.app`` wires an ``Engine`` into the page and the
tests drive it directly. Requests share nothing mutable: each takes the current ``QA`` object
(swapped whole on reload); the lock guards only rebuilding, reloading and writing uploads.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import rag
from rag import formats
from rag.documents import read_document
from rag.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from rag.pipeline import DEFAULT_K  # shown until the reader's tuned k is known
from rag.schema import Document, IndexInfo

DEFAULT_THRESHOLD = 0.5  # shown until the reader's tuned threshold is known
UPLOAD_MAX_BYTES = 5 * 1024 * 1024  # per uploaded article
UPLOAD_DIR = "uploads"
STALE_CHECK_SECONDS = 10.0  # how often a question may trigger the "did the articles change?" check

Tell = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Status:
    """What the page says about the index (replaced whole, never mutated)."""

    state: str = "starting"  # starting | building | ready | error
    stage: str = ""
    done: int = 0
    total: int = 0
    articles: int = 0
    chunks: int = 0
    message: str = ""


class Engine:
    """Owns the index for one docs folder: builds it, notices changes, hands out QA objects."""

    def __init__(self, docs_dir: str | os.PathLike, index_dir: str | os.PathLike, *, reader: object = None,
                 stale_check_seconds: float = STALE_CHECK_SECONDS, log: Tell | None = None) -> None:
        self.docs_dir = Path(docs_dir)
        self.index_dir = Path(index_dir)
        self.reader = reader
        self.stale_check_seconds = stale_check_seconds
        self._log = log
        self._lock = threading.RLock()  # rebuild / reload / writing uploads only
        self._qa: rag.QA | None = None
        self._threshold = DEFAULT_THRESHOLD
        self._k = DEFAULT_K
        self._status = Status()
        self._last_check = 0.0
        self._build_embedder = None  # used only under the lock, never by requests

    # -- state seen by requests --------------------------------------------------------------------
    @property
    def status(self) -> Status:
        return self._status

    @property
    def ready(self) -> bool:
        return self._qa is not None

    @property
    def threshold(self) -> float:
        """The reader's tuned abstention threshold, rounded for the slider."""
        return round(self._threshold, 2)

    def threshold_for(self, k: int | None) -> float:
        """The tuned abstention threshold for reading ``k`` passages (the reader's dev sweep gives each
        setting it calibrated its own), rounded for the slider; the tuned one before the reader loads."""
        qa = self._qa
        if qa is None or k is None:
            return self.threshold
        try:
            return round(float(qa.tuning(int(k)).threshold), 2)
        except (rag.RagError, TypeError, ValueError):
            return self.threshold

    @property
    def k(self) -> int:
        """Passages the reader reads per question: its tuned k (the slider's starting value)."""
        return self._k

    def current(self, progress: Tell | None = None) -> rag.QA:
        """The QA object to answer with; builds the index first if there is none yet.

        Every few seconds a request also checks whether the articles changed and, if no other
        request is already doing so, rebuilds incrementally before answering.
        """
        qa = self._qa
        if qa is None:
            if progress:
                progress("waiting for the index", 0, 0)
            with self._lock:
                if self._qa is None:
                    self._refresh_locked(progress)
                return self._qa  # type: ignore[return-value]
        if time.monotonic() - self._last_check >= self.stale_check_seconds and self._lock.acquire(blocking=False):
            try:
                self._refresh_locked(progress)
            except rag.RagError as e:  # keep answering from the index we have; the status says why
                if self._log:
                    self._log(f"warning: could not update the index: {e}", 0, 0)
            finally:
                self._lock.release()
        return self._qa  # type: ignore[return-value]

    def refresh(self, progress: Tell | None = None) -> IndexInfo | None:
        """Build the index if it is missing or out of date, then (re)load it. Returns what the build did."""
        with self._lock:
            return self._refresh_locked(progress)

    # -- under the lock ----------------------------------------------------------------------------
    def _tell(self, progress: Tell | None) -> Tell:
        def tell(stage: str, done: int, total: int) -> None:
            self._status = replace(self._status, state="building", stage=stage, done=done, total=total)
            for f in (self._log, progress):
                if f is not None:
                    f(stage, done, total)
        return tell

    def _refresh_locked(self, progress: Tell | None) -> IndexInfo | None:
        self._last_check = time.monotonic()
        qa = self._qa
        try:
            if qa is None:
                try:
                    qa = rag.load(self.index_dir, reader=self.reader)
                except (IndexNotFoundError, IndexCorruptError, IndexMismatchError) as e:
                    reasons = [f"no usable index yet ({type(e).__name__})"]
                    qa = None
                else:
                    reasons = self._reasons(qa)
            else:
                reasons = self._reasons(qa)
            info = None
            if reasons:
                info = self._build_locked(progress, reasons)
                qa = None
            if qa is None or qa is not self._qa:
                self._install(qa)
            self._last_check = time.monotonic()
            return info
        except rag.RagError as e:
            self._status = replace(self._status, state="error" if self._qa is None else "ready",
                                   message=str(e))
            raise

    def _reasons(self, qa: rag.QA) -> list[str]:
        built_from = qa.index.manifest.get("docs_dir")
        if built_from and Path(built_from) != self.docs_dir.resolve():
            return [f"the index was built from {built_from}, not {self.docs_dir}"]
        return qa.stale()

    def _build_locked(self, progress: Tell | None, reasons: Sequence[str]) -> IndexInfo:
        tell = self._tell(progress)
        more = f" and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        tell(f"building the index ({'; '.join(reasons[:3])}{more})", 0, 0)
        if self._build_embedder is None:
            from rag.embedding import Embedder

            self._build_embedder = Embedder()
        info = rag.build_index(self.docs_dir, self.index_dir, embedder=self._build_embedder, progress=tell)
        for w in info.warnings:
            if self._log:
                self._log(f"warning: {w}", 0, 0)
        return info

    def _install(self, qa: rag.QA | None) -> None:
        """Load (if needed) and warm up a QA object, then make it the current one."""
        tell = self._tell(None)
        if qa is None:
            old = self._qa
            qa = None
            if old is not None:
                try:  # reuse the loaded encoder: no second model load
                    qa = rag.load(self.index_dir, reader=self.reader, embedder=old.embedder)
                except IndexMismatchError:
                    qa = None
            if qa is None:
                qa = rag.load(self.index_dir, reader=self.reader)
        tell("loading the models", 0, 0)
        qa.ask("What do these articles say?")  # loads encoder and reader before requests share them
        try:
            self._threshold = float(qa.tuning().threshold)
            self._k = int(qa.read_k)
        except (AttributeError, TypeError, ValueError):
            pass
        self._qa = qa
        self._status = Status(state="ready", articles=len(qa.index.documents), chunks=len(qa.index.chunks))
        if self._log:
            self._log(f"ready: {len(qa.index.documents)} articles, {len(qa.index.chunks)} chunks", 0, 0)

    # -- article text for display ------------------------------------------------------------------
    def source(self, qa: rag.QA, doc_id: str) -> tuple[Document, str] | None:
        """The document and the text its offsets index (stored in the index), or None when unknown."""
        doc = qa.index.documents.get(doc_id)
        if doc is None:
            return None
        try:
            return doc, qa.source(doc_id)
        except rag.RagError:  # an index written before sources were stored: rebuilt on the next refresh
            return None

    # -- uploads -----------------------------------------------------------------------------------
    def add_articles(self, files: Sequence[str | os.PathLike], progress: Tell | None = None,
                     ) -> tuple[bool, str]:
        """Validate every file, then save them to ``<docs>/uploads/`` and rebuild.

        Returns (ok, message). When any file is bad nothing is written and the message names it.
        """
        if not files:
            return False, f"Choose one or more articles ({formats.ACCEPTED}) first."
        try:
            qa = self.current(progress)
            known = {d.content_hash: d.doc_id for d in qa.index.documents.values()}
        except rag.RagError:  # no usable index yet (e.g. an empty docs folder): uploads may fix that
            known = {}
        problems, checked = [], []
        seen: dict[str, str] = {}
        for f in files:
            p = Path(f)
            name = p.name
            reason = None
            digest = ""
            if formats.format_of(p) is None:
                reason = f"not an article file: use one of {formats.ACCEPTED}"
            else:
                try:
                    digest = read_document(p, "upload", name, UPLOAD_MAX_BYTES).content_hash
                except ValueError as e:
                    reason = str(e)
                except OSError as e:
                    reason = f"could not be read ({e.strerror or e})"
            if reason is None and digest in known:
                reason = f"the same text is already indexed as {known[digest]}"
            if reason is None and digest in seen:
                reason = f"the same text as {seen[digest]} in this upload"
            if reason is None:
                seen[digest] = name
                checked.append((p, _safe_name(name), digest))
            else:
                problems.append((name, reason))
        if problems:
            lines = "; ".join(f"{n}: {r}" for n, r in problems)
            return False, f"Nothing was added. {lines}."
        written: list[Path] = []
        with self._lock:
            target_dir = self.docs_dir / UPLOAD_DIR
            try:
                target_dir.mkdir(parents=True, exist_ok=True)
                for src, name, _ in checked:
                    dest = _free_path(target_dir, name)
                    tmp = dest.with_name(f".{dest.name}.part")
                    tmp.write_bytes(src.read_bytes())
                    os.replace(tmp, dest)
                    written.append(dest)
                self._refresh_locked(progress)
            except BaseException:
                for w in written:
                    w.unlink(missing_ok=True)
                raise
            qa = self._qa
        ids = {d.doc_id for d in qa.index.documents.values()}  # type: ignore[union-attr]
        added = [w.relative_to(self.docs_dir).with_suffix("").as_posix() for w in written]
        missing = [a for a in added if a not in ids]
        msg = f"Added {len(added)} article{'s' if len(added) != 1 else ''}: {', '.join(added)}. "
        msg += "They can be asked about now."
        if missing:
            msg += f" The index skipped {', '.join(missing)} (see the server log)."
        return True, msg


def _safe_name(name: str) -> str:
    """A safe file name keeping the article's suffix (lower case): ``My page (1).HTML`` -> ``My_page_1.html``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._-")[:80] or "article"
    return stem + Path(name).suffix.lower()


def _free_path(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name-2.txt``, ``name-3.txt``... so no existing file is overwritten.

    A file of the same stem with another suffix counts as taken too: it would have the same id.
    """
    stem, suffix = Path(name).stem, Path(name).suffix
    dest = folder / name
    n = 2
    while any((folder / (dest.stem + s)).exists() for s in formats.SUFFIXES):
        dest = folder / f"{stem}-{n}{suffix}"
        n += 1
    return dest


