"""HTML pages, PDFs and Markdown notes as articles: written here, indexed with the real embedder.

Every file is made by the test (fpdf2 writes the PDFs; no network). For each format: its facts
are answered, its chrome is never in a chunk, and ``qa.source(doc_id)[start:end] == text`` for
every answer, evidence, citation and alternative. Bad files are skipped with their reason.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import rag
from rag import formats
from rag.documents import load_documents

NEWS_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Harbour bridge reopens after repairs | Coastal Times</title>
<meta name="author" content="Jane Doe"><meta property="og:site_name" content="Coastal Times">
<meta name="date" content="2026-05-14"><link rel="canonical" href="https://example.com/news/bridge">
<style>.x{color:red}</style><script>var tracking = "SECRETSCRIPT";</script>
</head><body>
<div id="cookie-banner" class="cookie-consent"><p>We use cookies to improve your experience. Accept all cookies?</p>
<button>Accept</button></div>
<header><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/sport">Sport</a></li><li><a href="/weather">Weather</a></li></ul></nav></header>
<main><article>
<h1>Harbour bridge reopens after repairs</h1>
<p>The Northgate harbour bridge reopened on Tuesday after eleven months of repairs costing &pound;42 million,
the city council said.</p>
<p>Engineers replaced 312 steel cables and resurfaced the deck. The chief engineer, Maria Okafor, said the bridge
would carry up to 40,000 vehicles a day.</p>
<p>Traffic on the ring road fell by a third within hours of the reopening, according to the council&rsquo;s
transport office.</p>
</article>
<aside class="related"><h2>Related stories</h2><ul><li><a href="/a">Ferry strike ends after talks</a></li>
<li><a href="/b">New tram line approved for the old docks</a></li><li><a href="/c">Council budget vote delayed
again</a></li></ul></aside>
</main>
<footer><p>&copy; 2026 Coastal Times. All rights reserved. Contact us | Privacy policy | Terms of use</p></footer>
</body></html>
"""
CHROME_WORDS = ["cookies", "Accept", "Weather", "Sport", "Related stories", "Ferry strike", "tram line",
                "All rights reserved", "Privacy policy", "SECRETSCRIPT", "color:red"]

NOTE_MD = """# Glacier survey field notes

The survey team measured the **Storbreen glacier** in August 2025 and found that its front had
retreated *27 metres* since the previous survey.

## Equipment

- a differential GPS receiver
- two time-lapse cameras

```
retreat_m = 27
```

<div class="x">A raw HTML block keeps its text.</div>

The team was led by [Dr. Lena Aas](https://example.org/aas) of the University of Bergen.
"""

PAGE1 = ["The Harbour Authority handled 4.2 million tonnes of cargo in 2025, a record year for the port.",
         "The authority's dredging pro-",
         "gramme deepened the main channel to fourteen metres before the winter storms."]
PAGE2 = ["The new lighthouse at Cape Wrath was designed by the architect Ingrid Halvorsen.",
         "It was switched on in October 2025 and its beam reaches 22 nautical miles."]


def _pdf(path: Path, pages: list[list[str]], *, header: str = "Harbour Authority Annual Report 2025",
         password: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)  # the footer must stay on its page
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    for n, lines in enumerate(pages, 1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        if header:
            pdf.text(20, 12, header)
        pdf.set_font("Helvetica", size=12)
        y = 40
        if n == 1:
            pdf.set_font("Helvetica", size=18)
            pdf.text(20, 28, "Harbour Authority Annual Report")
            pdf.set_font("Helvetica", size=12)
        for line in lines:
            pdf.text(20, y, line)
            y += 7
        if header:
            pdf.text(100, 285, f"Page {n}")
    pdf.output(str(path))
    return path


def _scanned_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(120, 120, 120)
    pdf.rect(20, 20, 170, 120, style="F")  # an image-only page: no text layer
    pdf.output(str(path))
    return path


@pytest.fixture(scope="module")
def formats_qa(tmp_path_factory, embedder):
    docs = tmp_path_factory.mktemp("formats-docs")
    (docs / "bridge.html").write_text(NEWS_HTML, encoding="utf-8")
    (docs / "glacier.md").write_text(NOTE_MD, encoding="utf-8")
    _pdf(docs / "report.pdf", [PAGE1, PAGE2])
    index = tmp_path_factory.mktemp("formats-index") / "index"
    rag.build_index(docs, index, embedder=embedder)
    return rag.load(index, embedder=embedder, reader="fast")


def _spans(a: rag.Answer):
    yield from ([a] if a.text is not None else [])
    yield from ([a.evidence] if a.evidence else [])
    yield from a.citations
    for alt in a.alternatives:
        yield from _spans(alt)


def _check_offsets(qa, a):
    for s in _spans(a):
        assert qa.source(s.doc_id)[s.start:s.end] == s.text, (s.doc_id, s.start, s.end, s.text)


def test_html_main_text_title_and_metadata():
    conv = formats.convert(NEWS_HTML.encode(), "html", name="bridge.html")
    title = conv.text[conv.title[0]:conv.title[1]]
    assert title == "Harbour bridge reopens after repairs"
    assert "\u00a342 million" in conv.text and "council\u2019s" in conv.text  # entities decoded
    for w in CHROME_WORDS:
        assert w not in conv.text, w
    assert conv.meta.get("author") == "Jane Doe" and conv.meta.get("date") == "2026-05-14"
    assert conv.meta.get("url") == "https://example.com/news/bridge"
    body = conv.text[conv.segments[0][0]:conv.segments[-1][1]]
    assert len([p for p in body.split("\n") if p.strip()]) == 3  # one paragraph a line


def test_pdf_pages_headers_footers_and_hyphens(tmp_path):
    conv = formats.convert(_pdf(tmp_path / "r.pdf", [PAGE1, PAGE2]).read_bytes(), "pdf", name="r.pdf")
    assert "Harbour Authority Annual Report 2025" not in conv.text  # the running header
    assert "Page 1" not in conv.text and "Page 2" not in conv.text  # the running footer
    assert "dredging programme deepened" in conv.text  # hyphen at the line end joined
    assert len(conv.pages) == 2 and conv.pages[0] <= conv.text.index("4.2 million tonnes")
    assert conv.text.index("Ingrid Halvorsen") >= conv.pages[1] > conv.text.index("fourteen metres")


def test_markdown_markup_removed_code_kept():
    conv = formats.convert(NOTE_MD.encode(), "markdown", name="glacier.md")
    assert conv.text[conv.title[0]:conv.title[1]] == "Glacier survey field notes"
    assert "**" not in conv.text and "*27" not in conv.text and "](" not in conv.text and "#" not in conv.text
    assert "Dr. Lena Aas" in conv.text and "retreat_m = 27" in conv.text
    assert "A raw HTML block keeps its text." in conv.text and "<div" not in conv.text


def test_html_facts_answered_chrome_never_indexed(formats_qa):
    qa = formats_qa
    doc = qa.index.documents["bridge"]
    assert doc.format == "html" and doc.title == "Harbour bridge reopens after repairs"
    for c in qa.index.chunks:
        for w in CHROME_WORDS:
            assert w not in c.text, (w, c.chunk_id)
    a = qa.ask("Who is the chief engineer of the Northgate harbour bridge?", threshold=0.0)
    assert a.doc_id == "bridge" and "Maria Okafor" in a.text, a.text
    _check_offsets(qa, a)
    a = qa.ask("How many steel cables did the engineers replace?", threshold=0.0)
    assert a.text is not None and "312" in a.text, a.text
    _check_offsets(qa, a)


def test_pdf_answer_on_page_two_is_cited_with_its_page(formats_qa, capsys):
    qa = formats_qa
    a = qa.ask("Who designed the new lighthouse at Cape Wrath?", threshold=0.0)
    assert a.doc_id == "report" and "Ingrid Halvorsen" in a.text, a.text
    assert a.page == 2 and a.evidence.page == 2
    assert all(c.page in (1, 2) for c in a.citations if c.doc_id == "report")
    _check_offsets(qa, a)
    hits = qa.retrieve("How much cargo did the Harbour Authority handle in 2025?", k=3)
    report = [h for h in hits if h.doc_id == "report"]
    assert report and report[0].page == 1
    from rag.cli import format_answer

    assert " p. 2 " in format_answer(a)


def test_markdown_note_answered(formats_qa):
    qa = formats_qa
    a = qa.ask("How far had the Storbreen glacier front retreated?", threshold=0.0)
    assert a.doc_id == "glacier" and "27 metres" in a.text, a.text
    _check_offsets(qa, a)
    assert qa.index.documents["glacier"].format == "markdown"


def test_source_of_an_unknown_id_says_where_ids_come_from(formats_qa):
    with pytest.raises(rag.InputError, match="take the id from an answer"):
        formats_qa.source("nope")


def _bad_files(folder: Path) -> dict[str, str]:
    """name -> the words its warning must hold."""
    _pdf(folder / "locked.pdf", [PAGE1], password="secret")
    _scanned_pdf(folder / "scan.pdf")
    (folder / "menu.html").write_text("<html><body><nav><ul><li><a href='/'>Home</a></li><li><a href='/x'>News"
                                      "</a></li></ul></nav><script>x=1</script></body></html>", encoding="utf-8")
    (folder / "broken.html").write_bytes(b"<html><body>\x00\x00\x00<p>\xff\xfe</p>")
    (folder / "fake.pdf").write_text("Just some text\nwith a PDF suffix but no PDF inside.\n", encoding="utf-8")
    (folder / "report-copy.txt").write_bytes(_pdf(folder / "tmp.pdf", [PAGE2], header="").read_bytes())
    (folder / "tmp.pdf").unlink()
    with open(folder / "huge.html", "wb") as f:
        f.truncate(21 * 1024 * 1024)
    return {"locked.pdf": "encrypted PDF", "scan.pdf": "no text layer", "menu.html": "no main text",
            "broken.html": "binary", "fake.pdf": "not a PDF", "report-copy.txt": "rename it to .pdf",
            "huge.html": "over the 20 MB limit"}


def test_bad_files_each_skipped_with_its_reason_and_the_good_ones_indexed(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    expected = _bad_files(docs)
    (docs / "bridge.html").write_text(NEWS_HTML, encoding="utf-8")
    (docs / "glacier.md").write_text(NOTE_MD, encoding="utf-8")
    documents, warnings = load_documents(docs)
    assert sorted(d.doc_id for d in documents) == ["bridge", "glacier"]
    for name, words in expected.items():
        lines = [w for w in warnings if f"/{name}: skipped" in w]
        assert len(lines) == 1 and words in lines[0], (name, lines)
    index = tmp_path / "index"
    rag.build_index(docs, index, embedder=embedder)
    qa = rag.load(index, embedder=embedder, reader="fast")
    assert sorted(qa.index.documents) == ["bridge", "glacier"]
    a = qa.ask("Who is the chief engineer of the Northgate harbour bridge?", threshold=0.0)
    assert "Maria Okafor" in a.text
