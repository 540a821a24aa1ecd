"""The chat page: a Gradio app over one index (``python app.py``). Only this module and app.py import gradio.

What a reply shows: the answer and its confidence, the evidence sentence with the span marked, the
numbered citations (article title, passage with the span marked, the full article on demand) and,
when sources disagree, the competing answers side by side. When the articles do not say, it says
so plainly and still shows the closest passages.

Safety: every piece of article or question text goes through ``html.escape`` and the chat renders
messages as (sanitised) HTML with Markdown and LaTeX off, so an article holding ``<script>``, HTML
or Markdown images shows as plain text. Requests share nothing mutable: each takes the current
``QA`` object (swapped whole on reload); a lock guards only rebuilding and reloading the index.

Endpoints (``gradio_client``): ``/ask`` (question, k, mode, threshold) -> ``Answer.to_dict()``;
``/chat`` (what the page calls); ``/upload`` (files) -> message.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rag
from rag import formats
from rag.documents import read_document
from rag.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from rag.pipeline import MAX_QUESTION_CHARS
from rag.schema import Answer, Document, IndexInfo, Passage

MODES = ("hybrid", "dense", "bm25")
DEFAULT_K = 5
MAX_K = 20
DEFAULT_THRESHOLD = 0.5  # shown until the reader's tuned threshold is known
UPLOAD_MAX_BYTES = 5 * 1024 * 1024  # per uploaded article
UPLOAD_DIR = "uploads"
ARTICLE_VIEW_CHARS = 20_000  # longer articles show a window around the passage (keeps messages small)
STALE_CHECK_SECONDS = 10.0  # how often a question may trigger the "did the articles change?" check

EXAMPLES = [
    "Who heads Russia's Federal Service for Military and Technical Cooperation?",
    "What was the S-400 deal reportedly worth?",
    "When did the deliveries of S-400 launchers to Turkey begin?",
    "How many CV90 vehicles did the army order?",
]

Tell = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------------------
# The engine: the current QA object, (re)built and reloaded under one lock
# ---------------------------------------------------------------------------------------------------

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
            self._threshold = float(qa.answerer.threshold)
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


# ---------------------------------------------------------------------------------------------------
# Rendering: every piece of text escaped; newlines become <br> so a message is one line of HTML
# ---------------------------------------------------------------------------------------------------

def esc(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>")


def highlight(source: str, start: int, end: int, marks: Sequence[tuple[int, int, str]]) -> str:
    """``source[start:end]`` escaped, with each (s, e, tag) range wrapped in ``<tag>`` (nested ok)."""
    cuts = {start, end}
    for s, e, _ in marks:
        cuts.update(x for x in (s, e) if start < x < end)
    cuts = sorted(cuts)
    out = []
    for a, b in zip(cuts, cuts[1:]):
        piece = esc(source[a:b])
        for s, e, tag in reversed(marks):
            if s <= a and b <= e and s < e:
                name = tag.split(" ", 1)[0]
                piece = f"<{tag}>{piece}</{name}>"
        out.append(piece)
    return "".join(out)


def _conf_class(p: float) -> str:
    return "high" if p >= 0.75 else "mid" if p >= 0.5 else "low"


def _span_in(passage: Passage, ans: Answer) -> tuple[int, int] | None:
    """Where the answer falls in a passage: its own offsets, or the same words found in another source."""
    if ans.text is None:
        return None
    if ans.doc_id == passage.doc_id and ans.start is not None and ans.end is not None \
            and passage.start <= ans.start and ans.end <= passage.end:
        return ans.start, ans.end
    needle = ans.text.strip().lower()
    i = passage.text.lower().find(needle) if needle else -1
    if i >= 0 and passage.text[i:i + len(needle)].lower() == needle:
        return passage.start + i, passage.start + i + len(needle)
    return None


def _ref(p: Passage) -> str:
    page = f" p. {p.page}" if p.page else ""
    return f"{p.doc_id} [{p.start}:{p.end}]{page}"


def citation_lines(ans: Answer) -> str:
    """Plain text, one citation a line: ``doc_id [start:end] title`` (answer's, then alternatives')."""
    return "\n".join(f"[{n}] {_ref(p)} {p.title}".rstrip() for n, p, _ in _numbered(ans))


def _numbered(ans: Answer) -> list[tuple[int, Passage, Answer]]:
    """Every cited passage once, numbered, with the answer it supports."""
    out, seen = [], set()
    for a in [ans, *ans.alternatives]:
        for p in a.citations:
            key = (p.doc_id, p.start, p.end)
            if key not in seen:
                seen.add(key)
                out.append((len(out) + 1, p, a))
    return out


def _numbers_for(numbered, a: Answer) -> str:
    keys = {(p.doc_id, p.start, p.end) for p in a.citations}
    return " ".join(f"[{n}]" for n, p, _ in numbered if (p.doc_id, p.start, p.end) in keys)


def _article_view(found: tuple[Document, str] | None, p: Passage, span: tuple[int, int] | None) -> str:
    if found is None:
        return '<p class="rag-note">This index does not hold the article text: run `rag index` again.</p>'
    doc, source = found
    segments = list(doc.segments) or [(p.start, p.end)]
    total = sum(e - s for s, e in segments)
    clipped = False
    if total > ARTICLE_VIEW_CHARS:  # a window around the passage keeps the message small
        w0, w1 = p.start - ARTICLE_VIEW_CHARS // 2, p.end + ARTICLE_VIEW_CHARS // 2
        segments = [(max(s, w0), min(e, w1)) for s, e in segments if s < w1 and e > w0]
        clipped = True
    marks = [(p.start, p.end, 'span class="rag-psg"')]
    if span:
        marks.append((span[0], span[1], "mark"))
    def page_label(s: int) -> str:
        n = doc.page_at(s)
        return f'<p class="rag-page">Page {n}</p>' if n else ""

    body = "".join(f"{page_label(s)}<p>{highlight(source, s, e, marks)}</p>" for s, e in segments)
    note = '<p class="rag-note">(long article: the part around the passage)</p>' if clipped else ""
    return (f'<div class="rag-article"><p class="rag-article-title">{esc(doc.title)}</p>{note}{body}'
            f'<p class="rag-note">{esc(doc.path)}{_meta_note(doc)}</p></div>')


def _meta_note(doc: Document) -> str:
    """`` - by A. Writer, 2024-05-01, example.com`` from an HTML page's metadata (nothing else)."""
    m = doc.meta
    bits = [f"by {m['author']}" if m.get("author") else "", m.get("date", ""), m.get("site", "")]
    bits = [b for b in bits if b]
    return esc(" \u2014 " + ", ".join(bits)) if bits else ""


def render_reply(ans: Answer, lookup: Callable[[str], tuple[Document, str] | None]) -> str:
    """The assistant message for an Answer, as one line of HTML with all text escaped."""
    numbered = _numbered(ans)
    parts = ['<div class="rag-reply">']
    if ans.text is None:
        why = f" {esc(ans.reason[:1].upper() + ans.reason[1:])}." if ans.reason else ""
        parts.append(f'<div class="rag-abstain"><strong>Not in these articles.</strong>{why} '
                     f'<span class="rag-conf">confidence {ans.score:.0%}</span></div>')
        parts.append('<p class="rag-sub">The closest passages:</p>' if numbered else
                     '<p class="rag-sub">No passage matched the question.</p>')
    else:
        conf = _conf_class(ans.score)
        parts.append(f'<div class="rag-answer"><span class="rag-label">Answer</span> '
                     f'<span class="rag-text">{esc(ans.text)}</span> '
                     f'<span class="rag-conf rag-{conf}">confidence {ans.score:.0%}</span> '
                     f'<span class="rag-nums">{_numbers_for(numbered, ans)}</span></div>')
        if ans.evidence is not None:
            ev = ans.evidence
            parts.append(f'<blockquote class="rag-evidence">'
                         f'{highlight(ev.text, 0, len(ev.text), [(ans.start - ev.start, ans.end - ev.start, "mark")])}'
                         f'<span class="rag-from"> \u2014 {esc(ev.title)}</span></blockquote>')
        if ans.alternatives:
            parts.append('<p class="rag-sub">The sources disagree:</p><div class="rag-alts">')
            for i, a in enumerate([ans, *ans.alternatives]):
                head = "Chosen answer" if i == 0 else f"Other answer {i}"
                ev = a.evidence
                ev_html = ""
                if ev is not None and a.start is not None and a.end is not None:
                    ev_html = highlight(ev.text, 0, len(ev.text), [(a.start - ev.start, a.end - ev.start, "mark")])
                src = esc(a.citations[0].title) if a.citations else esc(a.doc_id or "")
                parts.append(f'<div class="rag-alt"><p class="rag-alt-head">{head}</p>'
                             f'<p class="rag-text">{esc(a.text or "")}</p>'
                             f'<p><span class="rag-conf rag-{_conf_class(a.score)}">confidence {a.score:.0%}</span> '
                             f'<span class="rag-nums">{_numbers_for(numbered, a)}</span></p>'
                             f'<p class="rag-alt-src">{src}</p>'
                             f'<p class="rag-alt-ev">{ev_html}</p></div>')
            parts.append("</div>")
        if numbered:
            parts.append('<p class="rag-sub">Sources:</p>')
    if numbered:
        parts.append('<ol class="rag-cites">')
        for n, p, a in numbered:
            span = _span_in(p, a)
            marks = [(span[0] - p.start, span[1] - p.start, "mark")] if span else []
            parts.append(f'<li class="rag-cite"><p class="rag-cite-head"><span class="rag-num">[{n}]</span> '
                         f'<span class="rag-title">{esc(p.title or p.doc_id)}</span> '
                         f'<code class="rag-ref">{esc(_ref(p))}</code></p>'
                         f'<p class="rag-psg-text">{highlight(p.text, 0, len(p.text), marks)}</p>'
                         f'<details class="rag-full"><summary>Open the full article</summary>'
                         f'{_article_view(lookup(p.doc_id), p, span)}</details></li>')
        parts.append("</ol>")
        parts.append(f'<details class="rag-copy"><summary>Citations as plain text</summary>'
                     f'<pre>{html.escape(citation_lines(ans))}</pre></details>')
    parts.append("</div>")
    return "".join(parts).replace("\n", "<br>")


def render_question(question: str) -> str:
    q = question if len(question) <= 600 else question[:600] + f"\u2026 ({len(question):,} characters)"
    return f'<div class="rag-q">{esc(q)}</div>'


def render_notice(message: str, kind: str = "warn") -> str:
    return f'<div class="rag-notice rag-{kind}">{esc(message)}</div>'


def render_status(st: Status, docs_dir: Path) -> str:
    if st.state == "ready":
        text = f"{st.articles} articles \u00b7 {st.chunks} passages \u00b7 from {docs_dir.name or docs_dir}/"
        if st.message:
            text += f" \u00b7 last rebuild failed: {st.message}"
        return f'<div class="rag-status rag-ok" title="{esc(str(docs_dir.resolve()))}">{esc(text)}</div>'
    if st.state == "error":
        return f'<div class="rag-status rag-bad">{esc("The index could not be built: " + st.message)}</div>'
    if st.state == "building":
        pct = f" {st.done}/{st.total}" if st.total else ""
        return f'<div class="rag-status rag-busy">{esc("Preparing the index: " + st.stage + pct)} \u2026</div>'
    return '<div class="rag-status rag-busy">Starting \u2026</div>'


CSS = """
.rag-header h1 { font-size: 1.45rem; margin: 0 0 .15rem 0; }
.rag-header p { margin: 0; color: var(--body-text-color-subdued); font-size: .95rem; }
.rag-status { font-size: .88rem; padding: .3rem .6rem; border-radius: 6px; margin-top: .35rem; display: inline-block; }
.rag-ok { background: var(--background-fill-secondary); color: var(--body-text-color-subdued); }
.rag-busy { background: #fff4d6; color: #5c4400; }
.rag-bad { background: #fde2e1; color: #7a1410; }
#rag-chat .message { font-size: 15px; line-height: 1.5; }
#rag-chat .message-wrap, #rag-chat .bubble-wrap { overflow-wrap: anywhere; }
.rag-reply { max-width: 100%; overflow-wrap: anywhere; }
.rag-reply p { margin: .25rem 0; }
.rag-answer { font-size: 1.05rem; margin-bottom: .35rem; }
.rag-label { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; font-weight: 700;
  color: var(--body-text-color-subdued); margin-right: .2rem; }
.rag-text { font-weight: 650; }
.rag-conf { display: inline-block; font-size: .8rem; font-weight: 600; padding: .05rem .45rem; border-radius: 999px;
  background: #e9eef5; color: #243447; white-space: nowrap; }
.rag-conf.rag-high { background: #dcf3e4; color: #0f5132; }
.rag-conf.rag-mid { background: #fff1c7; color: #5c4400; }
.rag-conf.rag-low { background: #fde2e1; color: #7a1410; }
.rag-nums, .rag-num { color: #1d4ed8; font-weight: 600; font-size: .9rem; white-space: nowrap; }
.rag-abstain { font-size: 1.05rem; padding: .35rem .6rem; border-left: 4px solid #b45309; background: #fff7ea;
  color: #3b2a10; border-radius: 4px; margin-bottom: .35rem; }
.rag-abstain .rag-conf { background: #fde7c2; color: #5c3a00; }
.rag-evidence { margin: .35rem 0 .5rem 0; padding: .35rem .7rem; border-left: 4px solid #93c5fd;
  background: var(--background-fill-secondary); font-size: .95rem; border-radius: 0 6px 6px 0; }
.rag-from { color: var(--body-text-color-subdued); font-size: .85rem; }
.rag-reply mark { background: #ffe066; color: #1a1a1a; padding: 0 .12em; border-radius: 3px;
  box-shadow: 0 0 0 1px #e0b800 inset; }
.rag-sub { font-weight: 650; font-size: .9rem; margin-top: .6rem !important; }
.rag-alts { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: .5rem; }
.rag-alt { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .4rem .6rem; font-size: .92rem; }
.rag-alt-head { font-size: .75rem !important; text-transform: uppercase; letter-spacing: .04em;
  color: var(--body-text-color-subdued); font-weight: 700; }
.rag-alt-src { font-size: .85rem; color: var(--body-text-color-subdued); }
.rag-alt-ev { font-size: .88rem; }
ol.rag-cites { list-style: none; padding-left: 0 !important; margin: .25rem 0 0 0 !important; }
li.rag-cite { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .4rem .6rem;
  margin: 0 0 .45rem 0 !important; }
.rag-cite-head { font-size: .92rem; }
.rag-title { font-weight: 650; }
code.rag-ref { font-size: .78rem; background: var(--background-fill-secondary); padding: .05rem .3rem;
  border-radius: 4px; white-space: nowrap; }
.rag-psg-text { font-size: .92rem; }
details.rag-full summary, details.rag-copy summary { cursor: pointer; color: #1d4ed8; font-size: .86rem; }
.rag-article { max-height: 22rem; overflow-y: auto; border-top: 1px solid var(--border-color-primary);
  margin-top: .3rem; padding-top: .3rem; font-size: .9rem; }
.rag-article-title { font-weight: 700; }
.rag-psg { background: #e3edff; color: inherit; border-radius: 2px; }
.rag-note { font-size: .8rem; color: var(--body-text-color-subdued); }
.rag-page { font-size: .75rem; font-weight: 600; color: var(--body-text-color-subdued); margin: .4rem 0 0;
  border-bottom: 1px dashed var(--border-color-primary); }
details.rag-copy pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .8rem; margin: .3rem 0;
  padding: .4rem .5rem; background: var(--background-fill-secondary); border-radius: 6px; user-select: all; }
.rag-q { white-space: normal; overflow-wrap: anywhere; }
.rag-notice { padding: .35rem .6rem; border-radius: 6px; }
.rag-warn { background: #fff1c7; color: #4a3600; }
.rag-err { background: #fde2e1; color: #7a1410; }
.rag-upload-msg .rag-notice { margin-top: .25rem; font-size: .9rem; }
.rag-ok.rag-notice { background: #dcf3e4; color: #0f5132; }
#rag-chat .message-row.bot-row { max-width: calc(100% - 24px) !important; width: auto;
  margin-left: 12px !important; margin-right: 12px !important; }
#rag-chat .bot-row .flex-wrap, #rag-chat .bot-row .message { max-width: 100% !important; width: 100%;
  box-sizing: border-box; }
#rag-chat .icon-button-wrapper.top-panel { display: none; }
#rag-status .html-container { padding-top: 0; padding-bottom: 0; }
#rag-examples .gallery { white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
@media (max-width: 640px) {
  #rag-chat .message-row { margin-left: 6px !important; margin-right: 6px !important; }
  #rag-chat .message-row.bot-row { max-width: calc(100% - 12px) !important; }
  .rag-header h1 { font-size: 1.25rem; }
  .rag-header p { display: none; }
  #rag-chat .bot-row .message { padding: 4px 6px !important; }
  li.rag-cite { padding: .35rem .45rem; }
  .rag-evidence { padding: .3rem .5rem; }
}
"""

# Not scoped by Gradio (the launch ``css`` is scoped inside the app container, these rules are not).
HEAD = """<style>
@media (max-width: 640px) { .gradio-container .main.app { padding-left: 8px !important; padding-right: 8px !important; } }
</style>"""

# After a reply: show the question and the start of its answer, not the end of a long reply.
SCROLL_JS = """() => {
  let tries = 0;
  const go = () => {
    const wrap = document.querySelector('#rag-chat .bubble-wrap');
    const rows = wrap ? wrap.querySelectorAll('.message-row.user-row') : [];
    const replies = wrap ? wrap.querySelectorAll('.rag-reply, .rag-notice') : [];
    if (!rows.length || replies.length < rows.length) {  // not rendered yet
      if (tries++ < 60) setTimeout(go, 50);
      return;
    }
    const last = rows[rows.length - 1];
    wrap.scrollTop += last.getBoundingClientRect().top - wrap.getBoundingClientRect().top - 8;
  };
  go();
}"""


# ---------------------------------------------------------------------------------------------------
# The Blocks app
# ---------------------------------------------------------------------------------------------------

def _check_settings(k: Any, mode: Any, threshold: Any) -> tuple[int, str, float | None]:
    try:
        k = int(k) if k is not None else DEFAULT_K
    except (TypeError, ValueError):
        raise rag.InputError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}") from None
    if not 1 <= k <= MAX_K:
        raise rag.InputError(f"k must be a whole number from 1 to {MAX_K}, got {k}")
    mode = mode or "hybrid"
    if mode not in MODES:
        raise rag.InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if threshold is not None:
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise rag.InputError(f"threshold must be a number from 0 to 1, got {threshold!r}") from None
        if not 0.0 <= threshold <= 1.0:
            raise rag.InputError(f"threshold must be from 0 to 1, got {threshold}")
    return k, mode, threshold


def _gr_progress(progress) -> Tell:
    def tell(stage: str, done: int, total: int) -> None:
        try:
            progress((done, total) if total else None, desc=stage)
        except Exception:  # noqa: BLE001 - progress display must never break an answer
            pass
    return tell


def build_app(docs_dir: str | os.PathLike = "seeds", index_dir: str | os.PathLike = "index", *,
              reader: object = None, engine: Engine | None = None, concurrency: int = 4,
              allow_upload: bool = True):
    """The chat page over ``index_dir`` (built from ``docs_dir`` when missing or out of date).

    The index is built on the first request if nobody called ``engine.refresh()`` before; the
    Engine is available as ``app.rag_engine``. Launch with :func:`launch` (it adds the page CSS).
    ``allow_upload=False`` leaves out the "Add articles" panel and its endpoint (a read-only page).
    """
    import gradio as gr

    engine = engine or Engine(docs_dir, index_dir, reader=reader)

    def lookup_for(qa):
        return lambda doc_id: engine.source(qa, doc_id)

    def api_ask(question: str, k: int = DEFAULT_K, mode: str = "hybrid", threshold: float | None = None) -> dict:
        """Answer a question from the articles: Answer.to_dict() (text is null when they do not say)."""
        try:
            k, mode, threshold = _check_settings(k, mode, threshold)
            qa = engine.current()
            return qa.ask(question, k=k, mode=mode, threshold=threshold).to_dict()
        except rag.InputError as e:
            raise gr.Error(_friendly(e), print_exception=False) from None
        except rag.RagError as e:
            raise gr.Error(f"The index is not usable: {e}", print_exception=False) from None

    def respond(question, history, k, mode, threshold, progress=gr.Progress()):
        history = list(history or [])
        question = question if isinstance(question, str) else ""
        keep = ""
        try:
            k, mode, threshold = _check_settings(k, mode, threshold)
            if threshold is not None and abs(threshold - engine.threshold) < 1e-9:
                threshold = None  # the slider left at the tuned value: use it unrounded
            qa = engine.current(_gr_progress(progress))
            ans = qa.ask(question, k=k, mode=mode, threshold=threshold)
            reply, cites = render_reply(ans, lookup_for(qa)), citation_lines(ans)
        except rag.InputError as e:
            reply, cites, keep = render_notice(_friendly(e)), "", question
        except rag.RagError as e:
            reply, cites, keep = render_notice(f"The index is not usable: {e}", "err"), "", question
        history.append({"role": "user", "content": render_question(question)})
        history.append({"role": "assistant", "content": reply})
        return history, keep, cites

    def upload(files, progress=gr.Progress()):
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        try:
            ok, msg = engine.add_articles(paths, _gr_progress(progress))
        except rag.RagError as e:
            ok, msg = False, f"Nothing was added: {e}"
        note = render_notice(msg, "ok" if ok else "warn")
        return note, render_status(engine.status, engine.docs_dir), (None if ok else gr.skip())

    def on_load():
        st = engine.status
        return (render_status(st, engine.docs_dir), gr.Timer(active=not engine.ready),
                gr.Slider(value=engine.threshold) if engine.ready else gr.skip())

    def poll():
        if engine.ready:
            return (render_status(engine.status, engine.docs_dir), gr.Timer(active=False),
                    gr.Slider(value=engine.threshold))
        return render_status(engine.status, engine.docs_dir), gr.skip(), gr.skip()

    def clear():
        return [], "", ""

    with gr.Blocks(title="Ask the articles", fill_width=True) as app:
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                gr.HTML('<div class="rag-header"><h1>Ask the articles</h1><p>Answers are quoted from the '
                        'articles, with the exact passage cited; when they do not say, the page says so.</p>'
                        '</div>')
                status = gr.HTML(render_status(engine.status, engine.docs_dir), label="Index status",
                                 elem_id="rag-status")
                chat = gr.Chatbot(elem_id="rag-chat", label="Chat", show_label=False, height="62vh",
                                  min_height=360, render_markdown=False, sanitize_html=True,
                                  latex_delimiters=[], allow_tags=False, buttons=[], autoscroll=False,
                                  feedback_options=None, layout="bubble",
                                  placeholder="Ask a question about the articles, or pick an example below.")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(elem_id="rag-question", label="Question", show_label=False, scale=5,
                                          lines=1, max_lines=4,
                                          placeholder=f"Ask a question (up to {MAX_QUESTION_CHARS:,} characters)",
                                          autofocus=True, container=False)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rag-send")
                gr.Examples(EXAMPLES, inputs=[question], label="Examples (click, then Ask)", elem_id="rag-examples")
            with gr.Column(scale=1, min_width=280):
                with gr.Accordion("Settings", open=True):
                    k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Passages to read (k)")
                    mode = gr.Radio(list(MODES), value="hybrid", label="Retrieval",
                                    info="hybrid: words and meaning; dense: meaning; bm25: words")
                    threshold = gr.Slider(0.0, 1.0, value=engine.threshold, step=0.01,
                                          label="Abstention threshold",
                                          info="answer only at or above this confidence")
                    clear_btn = gr.Button("Clear the chat", size="sm")
                cites = gr.Textbox(label="Citations of the last answer",
                                   info="one a line: doc_id [start:end] (p. N for a PDF) title", lines=3,
                                   max_lines=8, interactive=False, buttons=["copy"], elem_id="rag-cites")
                with gr.Accordion("Add articles", open=False, visible=allow_upload):
                    files = gr.File(file_count="multiple", file_types=list(formats.SUFFIXES), label="Articles",
                                    elem_id="rag-files")
                    gr.HTML('<p class="rag-note">Web pages (.html), PDFs with a text layer (.pdf), Markdown '
                            '(.md) or UTF-8 .txt files (the title on the first line, then the text). '
                            f'Up to {UPLOAD_MAX_BYTES // (1024 * 1024)} MB each.</p>')
                    add = gr.Button("Add to the index", size="sm")
                    upload_msg = gr.HTML("", label="Upload result", elem_classes="rag-upload-msg")
        timer = gr.Timer(1.0, active=False)

        ask_inputs = [question, chat, k, mode, threshold]
        send.click(respond, ask_inputs, [chat, question, cites], api_name="chat", concurrency_limit=concurrency,
                   concurrency_id="ask").then(None, js=SCROLL_JS, api_visibility="private", queue=False)
        question.submit(respond, ask_inputs, [chat, question, cites], api_visibility="private",
                        concurrency_limit=concurrency, concurrency_id="ask",
                        ).then(None, js=SCROLL_JS, api_visibility="private", queue=False)
        clear_btn.click(clear, None, [chat, question, cites], api_visibility="private", queue=False)
        if allow_upload:
            add.click(upload, [files], [upload_msg, status, files], api_name="upload", concurrency_limit=1)
        app.load(on_load, None, [status, timer, threshold], api_visibility="private", show_progress="hidden")
        timer.tick(poll, None, [status, timer, threshold], api_visibility="private", show_progress="hidden")
        gr.api(api_ask, api_name="ask", concurrency_limit=concurrency, concurrency_id="ask")
    app.queue(default_concurrency_limit=concurrency)
    app.rag_engine = engine
    return app


def _friendly(e: Exception) -> str:
    msg = str(e)
    return "Please ask again: " + (msg[:1].lower() + msg[1:] if msg else "that question cannot be used") + "."


def launch(app, host: str = "127.0.0.1", port: int = 7860, **kwargs) -> tuple[Any, str, str]:
    """Start the server (never shared publicly) with the page's CSS."""
    import gradio as gr

    kwargs.setdefault("max_file_size", f"{UPLOAD_MAX_BYTES // (1024 * 1024) * 4}mb")
    return app.launch(server_name=host, server_port=port, share=False, css=CSS, head=HEAD,
                      theme=gr.themes.Soft(font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue",
                                                    "Arial", "sans-serif"],
                                              font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas",
                                                         "monospace"]), footer_links=["api"], **kwargs)


def _console(stage: str, done: int, total: int, _last: dict = {}) -> None:  # noqa: B006 - tiny throttle
    if total > 0:
        step = max(1, total // 10)
        if done != total and done % step and _last.get("stage") == stage:
            return
        print(f"index: {stage} {done}/{total}", file=sys.stderr, flush=True)
    else:
        print(f"index: {stage}", file=sys.stderr, flush=True)
    _last["stage"] = stage


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
AUTH_ENV = "RAG_AUTH"


def add_serve_arguments(p: argparse.ArgumentParser, root: Path) -> argparse.ArgumentParser:
    """The options of ``python app.py`` and ``rag serve`` (one definition for both)."""
    p.add_argument("--docs", default=str(root / "seeds"), help="folder of articles (default: seeds)")
    p.add_argument("--index", default=str(root / "index"), help="index folder (default: index)")
    p.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"),
                   help="address to listen on (default: 127.0.0.1, env RAG_HOST); anything but loopback "
                        "needs --auth")
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")),
                   help="port (default: 7860, env RAG_PORT)")
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD",
                   help=f"ask for this login before the page opens (or set {AUTH_ENV}=USER:PASSWORD); "
                        "required when --host is not loopback")
    p.add_argument("--no-upload", action="store_true",
                   help="hide the 'Add articles' panel and refuse uploads (a read-only page)")
    p.add_argument("--reader", default=None,
                   help="answer reader: mpnet, fused, fast, minilm, features or a model folder "
                        "(default: the fastest good one for this machine, see the README)")
    p.add_argument("--concurrency", type=int, default=4, help="questions answered at the same time (default: 4)")
    return p


def parse_auth(value: str | None, host: str) -> tuple[str, str] | None:
    """``USER:PASSWORD`` -> (user, password); None on loopback without one.

    Raises :class:`rag.InputError` for a malformed value, and for a non-loopback host without a
    login: the page answers from your articles and, unless ``--no-upload``, writes to them.
    """
    value = value if value is not None else os.environ.get(AUTH_ENV) or None
    if value is None:
        if host not in LOOPBACK_HOSTS:
            raise rag.InputError(
                f"refusing to serve on {host!r} without a login: anyone who can reach that address could "
                f"read the articles and add files. Pass --auth USER:PASSWORD (or set {AUTH_ENV}), or serve "
                "on 127.0.0.1 and put a proxy with its own login in front")
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise rag.InputError("--auth must be USER:PASSWORD with both parts non-empty (the value given is not)")
    return user, password


def serve(a: argparse.Namespace) -> int:
    """Run the chat page with the options of :func:`add_serve_arguments` until Ctrl+C."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        auth = parse_auth(a.auth, a.host)
    except rag.InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    engine = Engine(a.docs, a.index, reader=a.reader, log=_console)
    app = build_app(a.docs, a.index, engine=engine, concurrency=max(1, a.concurrency),
                    allow_upload=not a.no_upload)
    extra = {"auth": auth} if auth else {}
    _, url, _ = launch(app, a.host, a.port, prevent_thread_lock=True, quiet=True, **extra)
    print(f"serving the chat page on {url}{' (login required)' if auth else ''}"
          f"{' (uploads off)' if a.no_upload else ''} (Ctrl+C to stop)", file=sys.stderr, flush=True)
    try:
        engine.refresh()
    except rag.RagError as e:
        print(f"error: {e}", file=sys.stderr)
        print("the page stays up and shows the error; fix the articles and restart", file=sys.stderr)
    try:
        app.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None, *, base: str | os.PathLike | None = None) -> int:
    """``python app.py [--docs seeds] [--index index] [--host 127.0.0.1] [--port 7860] [--auth U:P] [--no-upload]``."""
    root = Path(base) if base is not None else Path.cwd()
    p = argparse.ArgumentParser(prog="app.py", description="Serve the chat page over an index of articles "
                                "(built from the docs folder on first run, rebuilt when the articles change).")
    return serve(add_serve_arguments(p, root).parse_args(argv))
