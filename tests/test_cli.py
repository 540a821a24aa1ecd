"""The `rag` command: happy paths on the seeds with the real model (one index per module), and
every bad input or bad index as exit code != 0 with ONE stderr line "error: ... <the fix>"."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rag
from rag.index import versions
from rag.stores import faiss_store
from rag.cli import main
from conftest import FakeEmbedder, ROOT, SEEDS, sources

QUESTIONS = [
    "What was the S-400 deal reportedly worth?",
    "Who heads Russia's Federal Service for Military and Technical Cooperation?",
    "How many CV90 vehicles did the army order?",  # chrome only: not in the articles
    "\u041a\u0442\u043e \u0432\u043e\u0437\u0433\u043b\u0430\u0432\u043b\u044f\u0435\u0442 "
    "\u0420\u043e\u0441\u043e\u0431\u043e\u0440\u043e\u043d\u044d\u043a\u0441\u043f\u043e\u0440\u0442?",
    "\u571f\u8033\u5176\u4ec0\u4e48\u65f6\u5019\u6536\u5230S-400\uff1f",
]


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_error(rc: int, err: str, *fix: str, progress_ok: bool = False) -> str:
    """Exit code != 0 and one stderr line "error: ..." holding every fragment of ``fix``.

    ``progress_ok``: `rag index` prints progress notes ("reading articles ...") to stderr before
    it can know that something is wrong; the error is then the last line and the only other
    lines are those notes.
    """
    assert rc != 0
    assert "Traceback" not in err
    lines = err.rstrip("\n").split("\n")
    if progress_ok:
        assert all(ln.endswith(" ...") for ln in lines[:-1]), err
        lines = lines[-1:]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: "), line
    for fragment in fix:
        assert fragment in line, (fragment, line)
    return line


@pytest.fixture(scope="module")
def real_model(embedder):
    """The real all-MiniLM-L6-v2, loaded once for this module and shared by every Embedder the
    CLI creates (loading it takes many seconds on a busy machine)."""
    from rag.embedding import Embedder

    model = embedder.model
    original = Embedder.__dict__["model"]
    mp = pytest.MonkeyPatch()
    mp.setattr(Embedder, "model", property(
        lambda self: model if self.path == embedder.path else original.__get__(self, Embedder)))
    yield model
    mp.undo()


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, real_model) -> tuple[Path, int, str, str]:
    """`rag index SEEDS --index DIR`, run once for the module: (DIR, exit code, stdout, stderr)."""
    idx = tmp_path_factory.mktemp("cli") / "index"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["index", str(SEEDS), "--index", str(idx)])
    return idx, rc, out.getvalue(), err.getvalue()


@pytest.fixture
def fake_index(tmp_path, seeds_copy) -> Path:
    """A small index built with the fake embedder, for corrupting (loading fails before any model)."""
    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=FakeEmbedder(), analyze=False)
    return idx


# --- happy paths -------------------------------------------------------------------------------

def test_index_then_up_to_date(cli_index, capsys):
    idx, rc, out, err = cli_index
    assert rc == 0, err
    m = re.fullmatch(rf"indexed 5 articles into (\d+) chunks at {re.escape(str(idx))} "
                     r"\((\d+) chunks embedded, [\d.]+ s\)\n", out)
    assert m and m.group(1) == m.group(2), out
    assert "warning" not in err and "Traceback" not in err
    n = int(m.group(1))
    rc, out, err = run(capsys, "index", SEEDS, "--index", idx)
    assert rc == 0 and out == (f"index at {idx} is up to date (5 articles, {n} chunks); "
                               "nothing was embedded\n")
    # Without DOCS: the folder the index was built from.
    rc, out, _ = run(capsys, "index", "--index", idx, "--json")
    info = json.loads(out)
    assert rc == 0 and info["rebuilt"] is False and info["num_chunks"] == n and info["encoded_chunks"] == 0


def test_search_json_offsets(cli_index, capsys):
    idx = cli_index[0]
    rc, out, err = run(capsys, "search", QUESTIONS[1], "--index", idx, "--json", "-k", 3)
    assert rc == 0, err
    hits = json.loads(out)
    assert isinstance(hits, list) and len(hits) == 3
    src = sources()
    for h in hits:
        assert set(h) == {"doc_id", "title", "text", "start", "end", "score", "chunk_id", "page"}
        assert src[h["doc_id"]][h["start"]:h["end"]] == h["text"]
    assert any("Shugayev" in h["text"] for h in hits)
    rc, out, _ = run(capsys, "search", QUESTIONS[1], "--index", idx, "-k", 1, "--mode", "bm25")
    assert rc == 0 and out.startswith("[1] ")


def _check_answer(d: dict) -> None:
    assert set(d) == set(rag.Answer(text=None, score=0.0).to_dict())
    src = sources()
    if d["text"] is not None:
        assert src[d["doc_id"]][d["start"]:d["end"]] == d["text"]
        ev = d["evidence"]
        assert src[ev["doc_id"]][ev["start"]:ev["end"]] == ev["text"]
        assert ev["start"] <= d["start"] and d["end"] <= ev["end"]
    for c in d["citations"]:
        assert src[c["doc_id"]][c["start"]:c["end"]] == c["text"]


def test_ask_json(cli_index, capsys):
    idx = cli_index[0]
    rc, out, err = run(capsys, "ask", QUESTIONS[1], "--index", idx, "--json")
    assert rc == 0, err
    d = json.loads(out)
    _check_answer(d)  # answered or abstained (the reader's call): the shape and offsets hold
    assert d["question"] == QUESTIONS[1] and d["citations"]


def test_ask_at_a_setting_dev_never_calibrated_says_so(cli_index, capsys):
    """A k the reader's dev sweep never calibrated answers with the chosen setting's threshold, and
    the CLI says so (on stderr, the answer itself unchanged); not at the tuned k, nor with --threshold."""
    idx = cli_index[0]
    rc, out, err = run(capsys, "ask", QUESTIONS[1], "--index", idx, "--reader", "features", "-k", 7)
    assert rc == 0 and out.strip()
    assert ("note: the features reader was not calibrated on dev at k 7, context 0, so it abstains with the "
            "threshold tuned at k 5, context 0; calibrated settings: k 5, context 0" in err)
    assert "Pass --threshold to choose your own." in err
    for extra in (("-k", 7, "--threshold", 0.4), ("-k", 5), ()):
        rc, out, err = run(capsys, "ask", QUESTIONS[1], "--index", idx, "--reader", "features", *extra)
        assert rc == 0 and "note:" not in err, extra


def test_ask_file_json_one_answer_per_line(cli_index, capsys, tmp_path):
    idx = cli_index[0]
    qfile = tmp_path / "questions.txt"
    # Blank lines are skipped; a byte-order mark (Windows editors) is not part of the question.
    qfile.write_text("\ufeff" + "\n\n".join(QUESTIONS) + "\n\n", encoding="utf-8")
    rc, out, err = run(capsys, "ask", "--file", qfile, "--index", idx, "--json")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == len(QUESTIONS)
    answers = [json.loads(ln) for ln in lines]
    assert [a["question"] for a in answers] == QUESTIONS
    for a in answers:  # other scripts too: accepted, answered or abstained on (docs/reliability.md)
        _check_answer(a)


def test_ask_text_mode_other_script(cli_index, capsys):
    rc, out, err = run(capsys, "ask", QUESTIONS[4], "--index", cli_index[0])
    assert rc == 0 and "Traceback" not in err
    assert out.startswith(("Answer: ", "Not in these articles"))


# --- bad input: questions ----------------------------------------------------------------------

@pytest.mark.parametrize("cmd, question, fix", [
    ("ask", "", ("the question is empty", "type a question")),
    ("search", "   \t ", ("the question is empty", "type a question")),
    ("ask", "x" * 100_000, ("100,000 characters long; the limit is 1,000", "ask about one thing at a time")),
    ("ask", "Who\x1b[31m heads it?", ("control characters (U+001B)", "remove them and ask again")),
    ("search", "Who\x07 heads it?", ("control characters (U+0007)", "remove them and ask again")),
])
def test_bad_question(capsys, tmp_path, cmd, question, fix):
    # Checked before the index is even opened: the folder does not need to exist.
    rc, out, err = run(capsys, cmd, question, "--index", tmp_path / "none")
    assert_error(rc, err, *fix)
    assert out == ""


def test_ask_needs_a_question_or_a_file(capsys, tmp_path):
    rc, _, err = run(capsys, "ask", "--index", tmp_path)
    assert_error(rc, err, "give either a QUESTION or --file FILE")


def test_bad_question_files(capsys, tmp_path):
    rc, _, err = run(capsys, "ask", "--file", tmp_path / "nope.txt")
    assert_error(rc, err, "nope.txt' does not exist")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Qui dirige l'op\xe9ration ?\n".encode("latin-1"))
    rc, _, err = run(capsys, "ask", "--file", latin)
    assert_error(rc, err, "is not UTF-8", "iconv -f latin1 -t utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_text("A fine question?\nA bad\x1b question?\n", encoding="utf-8")
    rc, _, err = run(capsys, "ask", "--file", bad)
    assert_error(rc, err, "bad.txt' line 2: the question contains control characters", "remove them")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n", encoding="utf-8")
    rc, _, err = run(capsys, "ask", "--file", blank)
    assert_error(rc, err, "holds no questions (one per line)")


def test_bad_k(cli_index, capsys):
    rc, _, err = run(capsys, "search", QUESTIONS[0], "--index", cli_index[0], "-k", 0)
    assert_error(rc, err, "k must be a whole number of at least 1")


# --- bad input: docs folders -------------------------------------------------------------------

def test_docs_folder_missing(capsys, tmp_path):
    rc, out, err = run(capsys, "index", tmp_path / "typo", "--index", tmp_path / "idx")
    assert_error(rc, err, "does not exist", "e.g. `rag index seeds`")
    assert not (tmp_path / "idx").exists()


def test_docs_folder_empty(capsys, tmp_path):
    (tmp_path / "docs").mkdir()
    rc, _, err = run(capsys, "index", tmp_path / "docs", "--index", tmp_path / "idx")
    assert_error(rc, err, "no usable articles", "run `rag index` again", progress_ok=True)


def test_docs_folder_of_unusable_files(capsys, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "latin1.txt").write_bytes("Caf\xe9 title here\nBody.\n".encode("latin-1"))
    (docs / "bin.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (docs / "empty.txt").write_bytes(b"")
    rc, _, err = run(capsys, "index", docs, "--index", tmp_path / "idx")
    line = assert_error(rc, err, "none usable", "run `rag index` again", progress_ok=True)
    assert "not UTF-8" in line and "binary" in line and "empty" in line


def test_bad_files_skipped_with_one_warning_each(capsys, tmp_path, monkeypatch):
    import rag.index.build

    monkeypatch.setattr(rag.index.build, "Embedder", lambda model=None: FakeEmbedder())
    docs = tmp_path / "docs"
    docs.mkdir()
    good = "Russia and Turkey agree on deliveries\nThe first batch arrives in July, officials said.\n"
    (docs / "good.txt").write_text(good, encoding="utf-8")
    (docs / "copy.txt").write_text(good, encoding="utf-8")
    (docs / "latin1.txt").write_bytes("Caf\xe9 title here\nBody.\n".encode("latin-1"))
    (docs / "bin.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (docs / "empty.txt").write_bytes(b"")
    with open(docs / "huge.txt", "wb") as f:
        f.truncate(50 * 1024 * 1024)
    rc, out, err = run(capsys, "index", docs, "--index", tmp_path / "idx", "--json")
    assert rc == 0 and json.loads(out)["num_documents"] == 1
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    expected = {
        "huge.txt": "skipped: 50 MB is over the 20 MB limit per article (split it, or raise max_file_bytes)",
        "latin1.txt": "skipped: is not UTF-8 (byte 3): convert it, e.g. iconv -f latin1 -t utf-8",
        "bin.txt": "skipped: looks binary (it contains NUL bytes), not a text article",
        "empty.txt": "skipped: the file is empty",
        "good.txt": "skipped: an exact duplicate of 'copy'",
    }
    assert sorted(warnings) == sorted(f"warning: {docs / name}: {why}" for name, why in expected.items())


# --- bad index ---------------------------------------------------------------------------------

def test_index_folder_missing(capsys, tmp_path):
    rc, out, err = run(capsys, "search", QUESTIONS[0], "--index", tmp_path / "none")
    assert_error(rc, err, "no index at", f"build one with `rag index DOCS --index {tmp_path / 'none'}`")
    rc, out, err = run(capsys, "ask", QUESTIONS[0], "--index", tmp_path / "none")
    assert_error(rc, err, "no index at", "`rag index DOCS --index")


def _truncate_faiss(idx: Path) -> None:
    vec = versions.current_version(idx) / faiss_store.VECTORS
    vec.write_bytes(vec.read_bytes()[:100])


def test_truncated_faiss_file(capsys, fake_index):
    _truncate_faiss(fake_index)
    rc, _, err = run(capsys, "search", QUESTIONS[0], "--index", fake_index)
    assert_error(rc, err, "vectors.faiss has 100 bytes", "truncated or edited",
                 f"rebuild it with `rag index DOCS --index {fake_index}`")


def test_edited_chunk_table(capsys, fake_index):
    chunks = versions.current_version(fake_index) / versions.CHUNKS
    text = chunks.read_text(encoding="utf-8")
    chunks.write_text(text.replace("Shugayev", "Shugayov"), encoding="utf-8")  # same size, other bytes
    rc, _, err = run(capsys, "ask", QUESTIONS[1], "--index", fake_index)
    assert_error(rc, err, "chunks.jsonl was changed after the build", "rebuild it with `rag index")


def test_newer_format_manifest(capsys, fake_index):
    path = versions.current_version(fake_index) / versions.MANIFEST
    m = json.loads(path.read_text(encoding="utf-8"))
    m["format_version"] = versions.FORMAT_VERSION + 1
    path.write_text(json.dumps(m), encoding="utf-8")
    rc, _, err = run(capsys, "search", QUESTIONS[0], "--index", fake_index)
    assert_error(rc, err, f"format version {versions.FORMAT_VERSION + 1}, newer than this rag reads",
                 "upgrade rag, or rebuild it with `rag index")


def test_rebuild_command_repairs_a_corrupt_index(capsys, fake_index, seeds_copy, monkeypatch):
    """The suggested command works: `rag index` over a corrupt index builds a fresh version."""
    import rag.index.build

    _truncate_faiss(fake_index)
    monkeypatch.setattr(rag.index.build, "Embedder", lambda model=None: FakeEmbedder())
    rc, _, err = run(capsys, "index", seeds_copy, "--index", fake_index, "--json")
    assert rc == 0, err
    loaded = rag.index.open_index(fake_index)
    assert len(loaded.chunks) == loaded.vectors.ntotal


# --- messages stay one line ----------------------------------------------------------------------

def test_multiline_messages_printed_as_one_line(capsys, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise rag.DocumentsError("first line\nsecond line: run `rag index seeds`")

    monkeypatch.setattr(rag, "build_index", broken)
    rc, _, err = run(capsys, "index", tmp_path, "--index", tmp_path / "i")
    assert rc == 2 and err == "error: first line second line: run `rag index seeds`\n"

    def bug(*a, **k):
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr(rag, "build_index", bug)
    monkeypatch.delenv("RAG_DEBUG", raising=False)
    rc, _, err = run(capsys, "index", tmp_path, "--index", tmp_path / "i")
    assert rc == 1
    assert err == "error: unexpected RuntimeError: something unexpected (set RAG_DEBUG=1 for the traceback)\n"


# --- the real process: exit code, no traceback ---------------------------------------------------

def _subprocess(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAG_DEBUG"}
    return subprocess.run([sys.executable, "-m", "rag.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def test_subprocess_huge_question():
    p = _subprocess("ask", "x" * 100_000)
    assert p.returncode == 2 and p.stdout == ""
    assert_error(p.returncode, p.stderr, "100,000 characters long", "ask about one thing at a time")


def test_subprocess_truncated_index(fake_index):
    _truncate_faiss(fake_index)
    p = _subprocess("search", QUESTIONS[0], "--index", fake_index)
    assert p.returncode == 2 and p.stdout == ""
    assert_error(p.returncode, p.stderr, "truncated or edited", "rebuild it with `rag index")


def test_subprocess_missing_docs_and_index(tmp_path):
    p = _subprocess("index", tmp_path / "typo", "--index", tmp_path / "idx")
    assert_error(p.returncode, p.stderr, "does not exist", "`rag index seeds`")
    p = _subprocess("search", QUESTIONS[0], "--index", tmp_path / "idx")
    assert_error(p.returncode, p.stderr, "no index at", "`rag index DOCS --index")
