"""Article formats other than plain text: HTML pages, PDFs and Markdown notes, turned into text.

Each converter returns a ``Converted``: the exact text every offset of that document indexes (it
is stored in the index, ``QA.source(doc_id)``), where its title and body lie in that text, the
page starts of a PDF, and the page's metadata. The text is laid out as the ``.txt`` articles are:
the title on the first line, then one paragraph per line (a sentence never crosses a line break,
see ``rag.sentences``), paragraphs separated by a blank line.

    .html .htm       trafilatura: the main text (navigation, menus, cookie banners, "related"
                     lists, footers, scripts and styles removed), title, author, date, site, URL
    .pdf             pypdf: text per page; running headers and footers repeated on most pages
                     and hyphenation at line ends removed; lines joined back into paragraphs
    .md .markdown    markdown-it-py (CommonMark + tables): markup removed, the first heading is
                     the title, code blocks kept as text, raw HTML tags dropped (their text kept)

A file that cannot give text raises ``ValueError`` with the reason and what to do; the caller
skips it with one warning line. ``.txt`` files do not come here (``rag.documents`` reads them,
unchanged since before these formats existed).
"""
from __future__ import annotations

import io
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

#: Suffix (lower case) -> format name. ``txt`` is read by ``rag.documents`` itself.
SUFFIXES: dict[str, str] = {
    ".txt": "txt", ".html": "html", ".htm": "html", ".pdf": "pdf", ".md": "markdown", ".markdown": "markdown",
}
#: For messages: the suffixes accepted, in one string.
ACCEPTED = ", ".join(SUFFIXES)

_MAGIC = (  # content sniffing, to catch a suffix that lies
    (b"%PDF-", "a PDF file", ".pdf"),
    (b"PK\x03\x04", "a ZIP archive (a .docx, .xlsx or .epub?)", None),
    (b"\x89PNG", "a PNG image", None),
    (b"\xff\xd8\xff", "a JPEG image", None),
    (b"GIF8", "a GIF image", None),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file (.doc, .xls)", None),
    (b"{\\rtf", "an RTF document", None),
)
_HTML_START = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b",
                         re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_MIN_PARAGRAPH_WORDS = 5  # an HTML page whose longest line is shorter holds no article
_SENTENCE_END = re.compile(r"[.!?:;]['\"\u2019\u201d)\]]*$")


@dataclass(frozen=True)
class Converted:
    """A file turned into text: what offsets index, where the title and body are, PDF page starts."""

    text: str
    title: tuple[int, int]  # the title's span in ``text``
    segments: tuple[tuple[int, int], ...]  # the body: one span per PDF page, else one
    pages: tuple[int, ...] = ()  # PDF: the offset in ``text`` where each page starts (page 1 first)
    meta: dict[str, str] = field(default_factory=dict)  # title, author, date, site, url when known


def format_of(path: str | Path) -> str | None:
    """The format of ``path`` from its suffix (case-insensitive), or None when it is not an article."""
    return SUFFIXES.get(Path(path).suffix.lower())


def sniff(data: bytes) -> tuple[str, str | None] | None:
    """(what the bytes are, the suffix they should have) for binary content, else None."""
    head = data[:16]
    for magic, what, suffix in _MAGIC:
        if head.startswith(magic):
            return what, suffix
    if b"\x00" in data[:8192]:
        return "a binary file", None
    return None


def decode_text(data: bytes, encoding: str = "utf-8") -> str:
    """UTF-8 bytes as text with universal newlines (as ``Path.read_text`` gives it); ``ValueError``
    with the fix when they are not UTF-8. ``utf-8-sig`` drops a leading byte-order mark."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise ValueError(f"is not UTF-8 (byte {e.start}): convert it, e.g. iconv -f latin1 -t utf-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_content(data: bytes, fmt: str, suffix: str) -> None:
    """Raise ``ValueError`` when the bytes are not what the suffix says."""
    found = sniff(data)
    if fmt == "pdf":
        if found and found[1] == ".pdf":
            return
        what = found[0] if found else ("an HTML page" if _HTML_START.match(data[:4096]) else "text")
        hint = f": rename it to {'.html' if what == 'an HTML page' else '.txt'}" if not found else ""
        raise ValueError(f"is named {suffix} but is {what}, not a PDF (it does not start with %PDF-){hint}")
    if found:
        what, right = found
        fix = f": rename it to {right}" if right else ": convert it to text, HTML, PDF or Markdown first"
        raise ValueError(f"is named {suffix} but is {what}{fix}")


def convert(data: bytes, fmt: str, *, name: str = "") -> Converted:
    """Text, title and pages of a file's bytes in format ``fmt`` ("html", "pdf" or "markdown")."""
    if fmt == "html":
        return _html(data)
    if fmt == "pdf":
        return _pdf(data)
    if fmt == "markdown":
        return _markdown(data, name)
    raise ValueError(f"unknown article format {fmt!r}: the formats are {', '.join(sorted(set(SUFFIXES.values())))}")


# --- layout ---------------------------------------------------------------------------------------

def _clean_line(s: str) -> str:
    s = "".join(c for c in s if c in "\t" or unicodedata.category(c)[0] != "C" or c in "\u200c\u200d")
    return _SPACES.sub(" ", s).strip()


def _layout(title: str, pages: list[list[str]], meta: dict[str, str], paged: bool) -> Converted:
    """The text: title line, blank line, paragraphs one per line (pages separated the same way)."""
    title = _clean_line(title)
    parts = [title]
    pos = len(title)
    page_starts: list[int] = []
    segments: list[tuple[int, int]] = []
    body_start = body_end = None
    for paras in pages:
        paras = [p for p in (_clean_line(x) for x in paras) if p]
        pos += 2
        parts.append("\n\n")
        page_starts.append(pos)
        if not paras:
            continue
        block = "\n\n".join(paras)
        parts.append(block)
        if paged:
            segments.append((pos, pos + len(block)))
        body_start = pos if body_start is None else body_start
        pos += len(block)
        body_end = pos
    text = "".join(parts)
    if body_start is None:
        raise ValueError("has no text after the title")
    if not paged:
        segments = [(body_start, body_end)]
    return Converted(text, (0, len(title)), tuple(segments), tuple(page_starts) if paged else (), meta)


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


# --- HTML -----------------------------------------------------------------------------------------

def _html(data: bytes) -> Converted:
    import trafilatura  # noqa: PLC0415 - a few hundred ms; only builds that meet an .html file pay it

    try:
        doc = trafilatura.bare_extraction(data, with_metadata=True, include_comments=False, include_tables=True,
                                          include_images=False, include_links=False, deduplicate=False)
    except Exception as e:  # noqa: BLE001 - lxml and trafilatura raise many kinds on broken markup
        raise ValueError(f"could not be parsed as HTML ({type(e).__name__}: {str(e)[:80]}): save the page again "
                         "from the browser (File > Save Page As, 'Web Page, HTML only')") from None
    d = doc.as_dict() if hasattr(doc, "as_dict") else (doc or {})
    body = (d.get("text") or "").strip()
    if not body:
        raise ValueError("has no main text (only navigation, menus or scripts were found): save the article "
                         "page itself, not a front page or a page that loads its text with JavaScript")
    lines = [ln for ln in body.split("\n") if ln.strip()]
    if max(len(ln.split()) for ln in lines) < _MIN_PARAGRAPH_WORDS:
        # Only link labels ("Home", "News"): trafilatura's fallback found a menu, not an article.
        raise ValueError("has no main text (no paragraph of text, only short items such as menu links): save "
                         "the article page itself, not a front page or a page that loads its text with JavaScript")
    title = (d.get("title") or "").strip()
    if not title:
        title = lines[0] if lines else ""
    if lines and _same(lines[0], title):
        lines = lines[1:]
    meta = {"title": title}
    for key, src in (("author", "author"), ("date", "date"), ("site", "sitename"), ("url", "url")):
        if d.get(src):
            meta[key] = str(d[src]).strip()
    if not lines:
        raise ValueError("has a title but no main text: save the article page itself")
    return _layout(title, [lines], meta, paged=False)


# --- PDF ------------------------------------------------------------------------------------------

def _pdf(data: bytes) -> Converted:
    import pypdf  # noqa: PLC0415
    from pypdf.errors import PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # owner-password-only files open with an empty user password
            except Exception:  # noqa: BLE001 - e.g. AES without a crypto library
                opened = 0
            if not opened:
                raise ValueError("is an encrypted PDF (it needs a password to open): save or print an unencrypted "
                                 "copy and index that")
        texts = []
        for page in reader.pages:
            try:
                texts.append(page.extract_text() or "")
            except Exception:  # noqa: BLE001 - one bad page must not lose the others
                texts.append("")
        info = reader.metadata or {}
    except ValueError:
        raise
    except (PdfReadError, OSError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"is a damaged PDF ({type(e).__name__}: {str(e)[:80]}): re-export or re-save it") from None
    if not texts:
        raise ValueError("is a PDF with no pages")
    if not any(t.strip() for t in texts):
        raise ValueError(f"has no text layer ({len(texts)} page(s) of images, a scan?): run OCR first, e.g. "
                         "`ocrmypdf in.pdf out.pdf`, and index the result")
    pages = _strip_running_lines([[ln.rstrip() for ln in t.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
                                  for t in texts])
    paragraphs = [_paragraphs(lines) for lines in pages]
    meta_title = _clean_line(str(info.get("/Title") or "")) if hasattr(info, "get") else ""
    first = next((p for ps in paragraphs for p in ps), "")
    if meta_title and len(meta_title) <= 200:
        title = meta_title
        for ps in paragraphs:  # the title printed on the first page is not body text
            if ps:
                if _same(ps[0], title):
                    ps.pop(0)
                break
    else:
        title = first if len(first.split()) <= 20 else " ".join(first.split()[:12]) + " ..."
        if title == first:
            next(ps for ps in paragraphs if ps).pop(0)
    meta = {"title": title}
    if hasattr(info, "get") and info.get("/Author"):
        meta["author"] = _clean_line(str(info.get("/Author")))
    meta["pages"] = str(len(texts))
    return _layout(title, paragraphs, meta, paged=True)


def _key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def _strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop header and footer lines (the first or last two lines of a page, digits ignored) that
    repeat on most pages: "Annual Report 2025", "Page 3 of 12"."""
    n = len(pages)
    if n < 2:
        return pages
    edges = []
    for lines in pages:
        nonblank = [i for i, ln in enumerate(lines) if ln.strip()]
        edges.append(set(nonblank[:2] + nonblank[-2:]))
    counts = Counter(k for lines, e in zip(pages, edges) for k in {_key(lines[i]) for i in e})
    need = max(2, math.ceil(0.6 * n))
    running = {k for k, c in counts.items() if c >= need and k.strip()}
    if not running:
        return pages
    return [[ln for i, ln in enumerate(lines) if not (i in e and _key(ln) in running)]
            for lines, e in zip(pages, edges)]


def _paragraphs(lines: list[str]) -> list[str]:
    """A page's lines joined back into paragraphs: hyphenation at line ends undone; a line break
    is a paragraph break after a blank line, after a short line that ends a sentence, and around a
    heading (a short line at a paragraph's start without end punctuation)."""
    lines = [_clean_line(ln) for ln in lines]
    widths = sorted(len(ln) for ln in lines if ln)
    if not widths:
        return []
    typical = widths[len(widths) // 2]
    out: list[str] = []
    cur = ""
    for ln in lines:
        if not ln:
            if cur:
                out.append(cur)
            cur = ""
            continue
        if not cur:
            if len(ln) < 0.6 * typical and len(ln.split()) <= 12 and not re.search(r"[.!?:;,\-]$", ln):
                out.append(ln)  # a heading: a short line opening a paragraph, not ending a sentence
                continue
            cur = ln
        elif re.search(r"[^\W\d_]-$", cur) and ln[:1].islower():
            cur = cur[:-1] + ln  # "appoint-" + "ed" -> "appointed"
        else:
            cur = f"{cur} {ln}"
        if _SENTENCE_END.search(ln) and len(ln) < 0.8 * typical:
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


# --- Markdown -------------------------------------------------------------------------------------

def _inline(tok) -> str:
    parts = []
    for c in tok.children or ():
        if c.type in ("text", "code_inline"):
            parts.append(c.content)
        elif c.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif c.type == "image":
            parts.append(c.content)  # the alt text
    return "".join(parts)


def _markdown(data: bytes, name: str) -> Converted:
    from markdown_it import MarkdownIt  # noqa: PLC0415

    source = decode_text(data, "utf-8-sig")
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    title = ""
    blocks: list[str] = []
    row: list[str] | None = None
    for i, t in enumerate(tokens):
        if t.type == "inline":
            text = _inline(t)
            opener = tokens[i - 1].type if i else ""
            if row is not None:
                row.append(text.strip())
            elif opener == "heading_open" and not title:
                title = text
            elif text.strip():
                blocks.append(text)
        elif t.type in ("fence", "code_block"):
            blocks.extend(ln for ln in t.content.split("\n") if ln.strip())
        elif t.type == "tr_open":
            row = []
        elif t.type == "tr_close":
            if row and any(row):
                blocks.append(" | ".join(row))
            row = None
        elif t.type == "html_block":
            stripped = re.sub(r"<!--.*?-->|<[^>]*>", " ", t.content, flags=re.DOTALL)
            if stripped.strip() and not re.search(r"<(script|style)\b", t.content, re.IGNORECASE):
                blocks.append(stripped)
    if not title:
        title = Path(name).stem.replace("_", " ").replace("-", " ").strip() or "Untitled note"
    if not any(b.strip() for b in blocks):
        raise ValueError("has no text after its title")
    return _layout(title, [blocks], {"title": _clean_line(title)}, paged=False)
