"""HTML of the chat page: replies, citations, notices and the index status, every piece of text
escaped (``html.escape``; newlines become ``<br>`` so a message is one line of HTML). The page's
stylesheet is the package data file ``rag/web/page.css`` (``CSS``).
"""
from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from rag.schema import Answer, Document, Passage

from .engine import Status

ARTICLE_VIEW_CHARS = 20_000  # longer articles show a window around the passage (keeps messages small)
CSS = resources.files("rag.web").joinpath("page.css").read_text(encoding="utf-8")


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
