"""Reading article files: title, body with page chrome removed, exact offsets kept.

News pages saved as text carry chrome around the article: navigation lines before the headline
("All news"), teaser lists after it ("More from Land Warfare", then "-"-separated headlines with a
one-line teaser each), and summary boxes ("What you need to know:" + bullets) that repeat the body.
The rules below recognise these by their *shape*, not by their wording:

* navigation: short lines (fewer than three words) before the first headline-sized line;
* teaser list: a heading-like line (short, no sentence-final punctuation) from which the rest of
  the file is a list of short items, either separated by bullet/dash lines or made only of
  headline-like lines; the list and everything after it is dropped;
* summary box: a short line ending in ``:`` followed by bullet lines whose text is repeated in the
  rest of the body; the box is dropped (a box with new information is kept).

Offsets are into the text ``Path.read_text(encoding="utf-8")`` returns (universal newlines).
HTML, PDF and Markdown files are turned into text by ``rag.formats`` first (their own
boilerplate removal replaces the rules above); offsets then index that text.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from . import formats
from .errors import DocumentsError
from .schema import Document

DEFAULT_MAX_FILE_BYTES = 20 * 1024 * 1024

_SEPARATOR = re.compile(r"^\s*[-\u2013\u2014\u2022*\u00b7|_=~]+\s*$")
_BULLET = re.compile(r"^\s*(?:[-\u2013\u2014\u2022*\u00b7]|\d{1,2}[.)])\s+\S")
_SENTENCE_END = re.compile(r"[.!?]['\"\u2019\u201d)\]]*$")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class _Line:
    start: int
    end: int  # excludes the newline
    text: str

    @property
    def blank(self) -> bool:
        return not self.text.strip()

    @property
    def words(self) -> int:
        return len(self.text.split())


def _lines(source: str) -> list[_Line]:
    out, pos = [], 0
    for raw in source.split("\n"):
        out.append(_Line(pos, pos + len(raw), raw))
        pos += len(raw) + 1
    return out


def _heading_like(line: _Line, max_words: int = 10) -> bool:
    t = line.text.strip()
    return (
        0 < line.words <= max_words
        and len(t) <= 90
        and not _SENTENCE_END.search(t)
        and not _SEPARATOR.match(t)
        and (t[0].isupper() or t[0].isdigit())
    )


def _headline_like(line: _Line) -> bool:
    """A teaser headline: short-ish and not a finished sentence."""
    t = line.text.strip()
    return 0 < line.words <= 16 and not _SENTENCE_END.search(t) and not _SEPARATOR.match(t)


def _is_teaser_list(lines: list[_Line]) -> bool:
    """True when ``lines`` (non-blank, after a heading) look like a list of teasers to the end."""
    if not lines:
        return False
    seps = [i for i, ln in enumerate(lines) if _SEPARATOR.match(ln.text)]
    if seps:
        # Headings may stack before the first separator ("Related ..." then "More from ...").
        if seps[0] > 2 or not all(_heading_like(ln) for ln in lines[: seps[0]]):
            return False
        items, cur = [], []
        for ln in lines[seps[0] + 1:]:
            if _SEPARATOR.match(ln.text):
                items.append(cur)
                cur = []
            else:
                cur.append(ln)
        items.append(cur)
        items = [it for it in items if it]
        # Each item: a headline, optionally followed by one or two teaser lines.
        return bool(items) and all(len(it) <= 3 and _headline_like(it[0]) for it in items)
    # No separators: a plain list of at least three headline-like lines to the end.
    return len(lines) >= 3 and all(_headline_like(ln) for ln in lines)


def _chrome_tail_start(lines: list[_Line], first: int) -> int | None:
    """Index of the heading line where a trailing teaser list starts, or None."""
    for i in range(first, len(lines)):
        ln = lines[i]
        if ln.blank or not _heading_like(ln):
            continue
        rest = [x for x in lines[i + 1:] if not x.blank]
        if _is_teaser_list(rest):
            return i
    return None


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return {tuple(words[i:i + n]) for i in range(max(0, len(words) - n + 1))}


def _summary_boxes(lines: list[_Line], first: int, stop: int) -> list[tuple[int, int]]:
    """Line-index ranges [a, b) of summary boxes whose bullets repeat the rest of the body."""
    boxes = []
    i = first
    while i < stop:
        t = lines[i].text.strip()
        if t.endswith(":") and 0 < lines[i].words <= 8:
            j, bullets = i + 1, []
            while j < stop and (lines[j].blank or _BULLET.match(lines[j].text)):
                if not lines[j].blank:
                    bullets.append(j)
                j += 1
            if bullets:
                box_text = " ".join(lines[b].text for b in bullets)
                rest = " ".join(lines[k].text for k in range(first, stop) if not i <= k < j)
                box_sh = _shingles(box_text)
                if box_sh and len(box_sh & _shingles(rest)) / len(box_sh) >= 0.8:
                    boxes.append((i, j))
                i = j
                continue
        i += 1
    return boxes


def _title_index(lines: list[_Line]) -> int | None:
    nonblank = [i for i, ln in enumerate(lines) if not ln.blank]
    for i in nonblank[:5]:
        if lines[i].words >= 3:
            return i
    return nonblank[0] if nonblank else None


def parse_article(source: str, doc_id: str, path: str = "", content_hash: str = "") -> Document:
    """Split an article's text into title and body segments (offsets into ``source``).

    A document with no body gets ``segments == ()``; the caller decides what to do with it.
    """
    lines = _lines(source)
    ti = _title_index(lines)
    if ti is None:
        return Document(doc_id, path, "", 0, 0, (), content_hash, source)
    title_line = lines[ti]
    lead = len(title_line.text) - len(title_line.text.lstrip())
    t_start, t_end = title_line.start + lead, title_line.start + len(title_line.text.rstrip())
    first = ti + 1
    tail = _chrome_tail_start(lines, first)
    stop = len(lines) if tail is None else tail
    dropped = set()
    for a, b in _summary_boxes(lines, first, stop):
        dropped.update(range(a, b))
    segments: list[tuple[int, int]] = []
    cur: list[_Line] = []

    def flush() -> None:
        kept = [ln for ln in cur if not ln.blank]
        if kept:
            s = kept[0].start + len(kept[0].text) - len(kept[0].text.lstrip())
            e = kept[-1].start + len(kept[-1].text.rstrip())
            segments.append((s, e))
        cur.clear()

    for k in range(first, stop):
        if k in dropped:
            flush()
        else:
            cur.append(lines[k])
    flush()
    return Document(doc_id, path, source[t_start:t_end], t_start, t_end, tuple(segments), content_hash, source)


def _iter_article_files(docs: Path, warn: list[str]) -> list[Path]:
    root = docs.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(docs, followlinks=False):
        dirnames.sort()
        for d in list(dirnames):
            p = Path(dirpath) / d
            if p.is_symlink():
                dirnames.remove(d)
                warn.append(f"{p}: skipped a symlinked folder (only files inside the docs folder are read)")
        for name in sorted(filenames):
            if formats.format_of(name) is None:
                continue
            p = Path(dirpath) / name
            if p.is_symlink():
                try:
                    p.resolve(strict=True).relative_to(root)
                except ValueError:
                    warn.append(f"{p}: skipped a symlink pointing outside the docs folder")
                    continue
                except (OSError, RuntimeError):  # dangling, or a loop (RuntimeError before 3.13)
                    warn.append(f"{p}: skipped a broken or looping symlink")
                    continue
            found.append(p)
    return sorted(found, key=lambda p: p.relative_to(docs).as_posix())


def doc_id_for(path: Path, docs: Path) -> str:
    """The document id: the path relative to the docs folder, without its suffix, posix style."""
    return path.relative_to(docs).with_suffix("").as_posix()


def format_bytes(n: int) -> str:
    """``20 MB``, ``50.5 MB``, ``12 KB``, ``900 bytes`` (binary units, as the limit is set)."""
    for unit, size in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The raw bytes of an article file; ``ValueError`` for a non-file or one over the size limit.

    The size is checked before anything is read, so an oversized file costs one ``stat``.
    """
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("is not a regular file (a pipe, device or socket), not an article")
    if st.st_size > max_bytes:
        raise ValueError(f"{format_bytes(st.st_size)} is over the {format_bytes(max_bytes)} limit per article "
                         "(split it, or raise max_file_bytes)")
    return path.read_bytes()


def file_digest(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> str:
    """The sha256 of an article file's bytes (what ``Document.content_hash`` holds)."""
    return hashlib.sha256(read_bytes(path, max_bytes)).hexdigest()


def read_source(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> tuple[str, str]:
    """Return (text as ``read_text(encoding="utf-8")`` gives it, sha256 of the bytes) of a ``.txt`` file.

    Raises ``ValueError`` with a reason for files that cannot be indexed.
    """
    data = read_bytes(path, max_bytes)
    found = formats.sniff(data)
    if found and found[1]:
        raise ValueError(f"is named {path.suffix} but is {found[0]}: rename it to {found[1]}")
    if b"\x00" in data:
        raise ValueError("looks binary (it contains NUL bytes), not a text article")
    return formats.decode_text(data), hashlib.sha256(data).hexdigest()


def check_docs_dir(docs_dir: str | os.PathLike) -> Path:
    """The docs folder as a Path; raises ``DocumentsError`` when it is missing or not a folder."""
    docs = Path(docs_dir)
    if not docs.exists():
        raise DocumentsError(f"docs folder {str(docs)!r} does not exist: pass the folder of articles "
                             f"({formats.ACCEPTED}), e.g. `rag index seeds`")
    if not docs.is_dir():
        raise DocumentsError(f"{str(docs)!r} is not a folder: pass the folder that holds the articles")
    return docs


def _body_key(doc: Document) -> str:
    """Same title and body words: the same article, whatever its whitespace, line ends or chrome."""
    text = " ".join(doc.title.split()) + "\n" + " ".join(doc.body.split())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_article(path: Path, docs: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document | str:
    """One file of ``docs`` read and cleaned: its Document, or the warning saying why it is skipped.

    Independent of every other file (the distributed indexer runs it on workers); duplicates are
    decided afterwards, in path order, by ``dedupe_documents``.
    """
    try:
        return read_document(path, doc_id_for(path, docs), path.relative_to(docs).as_posix(), max_file_bytes)
    except (ValueError, OSError) as e:
        return f"{path}: skipped: {e}"


def read_document(path: Path, doc_id: str, rel: str, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Document:
    """One article file of any accepted format as a Document; ``ValueError`` says why it cannot be used.

    ``.txt`` is read as it always was (offsets index its text); HTML, PDF and Markdown files are
    turned into text by ``rag.formats`` and offsets index that text (``Document.source``).
    """
    fmt = formats.format_of(path)
    if fmt is None:
        raise ValueError(f"is not an article file: use one of {formats.ACCEPTED}")
    if fmt == "txt":
        source, digest = read_source(path, max_file_bytes)
        if not source.strip():
            raise ValueError("the file is empty")
        doc = parse_article(source, doc_id, rel, digest)
        if not doc.segments:
            raise ValueError("no article body found after the title")
        return doc
    data = read_bytes(path, max_file_bytes)
    if not data.strip():
        raise ValueError("the file is empty")
    formats.check_content(data, fmt, path.suffix)
    conv = formats.convert(data, fmt, name=path.name)
    t0, t1 = conv.title
    return Document(doc_id, rel, conv.text[t0:t1], t0, t1, conv.segments, hashlib.sha256(data).hexdigest(),
                    conv.text, format=fmt, pages=conv.pages, meta=conv.meta)


def dedupe_documents(paths: list[Path], results: list[Document | str], warnings: list[str]) -> list[Document]:
    """Keep the first of exact or same-article duplicates (``results`` in ``paths`` order), and the
    first of two files whose ids collide (``notes/a.md`` and ``notes/a.html`` are both ``notes/a``)."""
    documents: list[Document] = []
    seen_hash: dict[str, str] = {}
    seen_body: dict[str, str] = {}
    seen_id: dict[str, str] = {}
    for path, doc in zip(paths, results):
        if isinstance(doc, str):
            warnings.append(doc)
            continue
        if doc.doc_id in seen_id:
            warnings.append(f"{path}: skipped: its document id {doc.doc_id!r} is already {seen_id[doc.doc_id]!r} "
                            "(the same name with another suffix): rename one of them")
            continue
        if doc.content_hash in seen_hash:
            warnings.append(f"{path}: skipped: an exact duplicate of {seen_hash[doc.content_hash]!r}")
            continue
        body_key = _body_key(doc)
        if body_key in seen_body:
            warnings.append(f"{path}: skipped: the same article (title and body) as {seen_body[body_key]!r}")
            continue
        seen_hash[doc.content_hash] = doc.doc_id
        seen_body[body_key] = doc.doc_id
        seen_id[doc.doc_id] = doc.path
        documents.append(doc)
    return documents


def list_articles(docs_dir: str | os.PathLike) -> tuple[Path, list[Path], list[str]]:
    """The checked docs folder, its article files (every suffix in ``formats.SUFFIXES``) in path
    order, and warnings about others."""
    docs = check_docs_dir(docs_dir)
    warnings: list[str] = []
    return docs, _iter_article_files(docs, warnings), warnings


def require_documents(documents: list[Document], files: list[Path], docs: Path, warnings: list[str]) -> None:
    if not documents:
        detail = f" ({len(files)} article file(s), none usable: {'; '.join(warnings[:3])})" if files else ""
        raise DocumentsError(f"no usable articles in {str(docs)!r}{detail}: add articles ({formats.ACCEPTED}; "
                             "a .txt file is a title line, then the body) and run `rag index` again")


def load_documents(docs_dir: str | os.PathLike, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                   ) -> tuple[list[Document], list[str]]:
    """Read every article below ``docs_dir`` (recursively; ``.txt``, ``.html``/``.htm``, ``.pdf``,
    ``.md``/``.markdown``), cleaned, in path order.

    Returns ``(documents, warnings)``. A file that cannot be used (not UTF-8, binary, empty, no
    body, too large, a duplicate of another, a symlink out of the folder, an encrypted or scanned
    PDF, an HTML page with no main text, a suffix that lies about the content) is skipped with
    a warning naming it; the rest are still returned. Raises ``DocumentsError`` when the folder
    is missing or holds no usable article.
    """
    docs, files, warnings = list_articles(docs_dir)
    documents = dedupe_documents(files, [read_article(p, docs, max_file_bytes) for p in files], warnings)
    require_documents(documents, files, docs, warnings)
    return documents, warnings
