"""Reliability at the library level: bad input, bad files, killed and concurrent builds, readers
during builds, and nothing unpickled or evaluated from disk. (CLI-level checks: test_cli.py;
docs/reliability.md maps every case to its test.)"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rag
from rag.index import versions
from rag.documents import DEFAULT_MAX_FILE_BYTES, load_documents
from rag.index import open_index
from rag.pipeline import MAX_QUESTION_CHARS, validate_question
from conftest import FakeEmbedder, ROOT, SEEDS, kill_build_when_ready, sources

GOOD = "A good title line here\nA body sentence about radars and ships.\n"


# --- questions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("question, match", [
    ("", "the question is empty"),
    ("   \t\n  ", "the question is empty"),
    ("x" * 100_000, "100,000 characters long; the limit is 1,000"),
    ("Who heads\x00 the service?", r"control characters \(U\+0000\)"),
    ("Who\x1b[31m heads it?", r"control characters \(U\+001B\)"),
    ("bidi \u202eoverride", r"U\+202E"),
    ("lone \ud800 surrogate", r"U\+D800"),
    (None, "must be text"),
    (b"bytes?", "must be text"),
])
def test_bad_questions_refused_with_input_error(question, match):
    with pytest.raises(rag.InputError, match=match) as e:
        validate_question(question)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)  # InputError is a ValueError too


def test_question_limit_is_inclusive_and_whitespace_collapsed():
    assert validate_question("a" * MAX_QUESTION_CHARS) == "a" * MAX_QUESTION_CHARS
    assert validate_question("  Who\theads\n\nit? ") == "Who heads it?"
    # A byte-order mark (questions.txt saved on Windows) is dropped; joiners and RTL marks are text.
    assert validate_question("\ufeffWho heads it?") == "Who heads it?"
    persian = "\u0642\u0631\u0627\u0631\u062f\u0627\u062f \u0627\u0633\u200c\u06f4\u06f0\u06f0 \u0686\u0642\u062f\u0631 \u0628\u0648\u062f\u061f"
    assert validate_question(persian) == persian


def _check_answer_offsets(ans, src: dict[str, str]) -> None:
    d = ans.to_dict()
    assert json.loads(json.dumps(d)) == d
    if ans.text is not None:
        assert src[ans.doc_id][ans.start:ans.end] == ans.text
        assert ans.evidence.start <= ans.start and ans.end <= ans.evidence.end
        assert src[ans.doc_id][ans.evidence.start:ans.evidence.end] == ans.evidence.text
    for p in ans.citations:
        assert src[p.doc_id][p.start:p.end] == p.text


@pytest.mark.parametrize("question", [
    "\u041a\u0442\u043e \u0432\u043e\u0437\u0433\u043b\u0430\u0432\u043b\u044f\u0435\u0442 "
    "\u0420\u043e\u0441\u043e\u0431\u043e\u0440\u043e\u043d\u044d\u043a\u0441\u043f\u043e\u0440\u0442?",
    "\u571f\u8033\u5176\u4ec0\u4e48\u65f6\u5019\u6536\u5230S-400\uff1f",
    "\U0001F680\u2753",
])
def test_other_scripts_accepted_and_answer_honours_offsets(seed_qa, question):
    """Decision: any script is accepted; the reader answers or abstains; offsets always hold."""
    ans = seed_qa.ask(question)
    assert ans.question == validate_question(question)
    _check_answer_offsets(ans, sources())
    for p in seed_qa.retrieve(question, k=3):
        assert sources()[p.doc_id][p.start:p.end] == p.text


# --- documents ---------------------------------------------------------------------------------

def test_fifty_megabyte_file_skipped_by_size_before_reading(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text(GOOD, encoding="utf-8")
    big = docs / "huge.txt"
    with open(big, "wb") as f:  # sparse: 50 MB on paper, nothing written
        f.truncate(50 * 1024 * 1024)
    read = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or real_read_bytes(self))
    t0 = time.perf_counter()
    docs_out, warnings = load_documents(docs)
    assert time.perf_counter() - t0 < 5
    assert [d.doc_id for d in docs_out] == ["good"]
    assert "huge.txt" not in read  # the size check comes before any read
    (w,) = [w for w in warnings if "huge.txt" in w]
    assert w == f"{big}: skipped: 50 MB is over the 20 MB limit per article (split it, or raise max_file_bytes)"
    assert DEFAULT_MAX_FILE_BYTES == 20 * 1024 * 1024
    # The limit is a setting: raised, the same file is read (and refused as binary: all NUL bytes).
    _, warnings = load_documents(docs, max_file_bytes=60 * 1024 * 1024)
    assert any("huge.txt" in w and "binary" in w for w in warnings)


def test_duplicates_one_copy_indexed_the_other_reported(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    body = "Russia and Turkey agree on deliveries\nThe first batch arrives in July, officials said.\n\nMore later.\n"
    (docs / "a.txt").write_text(body, encoding="utf-8")
    (docs / "b_exact.txt").write_text(body, encoding="utf-8")
    (docs / "c_crlf.txt").write_bytes(body.replace("\n", "\r\n").encode())  # same article, other line ends
    (docs / "d_spaced.txt").write_text("  " + body.replace(" officials", "   officials"), encoding="utf-8")
    (docs / "e_other.txt").write_text(body.replace("July", "August"), encoding="utf-8")
    out, warnings = load_documents(docs)
    assert [d.doc_id for d in out] == ["a", "e_other"]
    text = "\n".join(warnings)
    assert "b_exact.txt: skipped: an exact duplicate of 'a'" in text
    assert "c_crlf.txt: skipped: the same article (title and body) as 'a'" in text
    assert "d_spaced.txt: skipped: the same article (title and body) as 'a'" in text
    assert len(warnings) == 3


def test_symlinked_folder_pointing_outside_is_not_read(tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "s.txt").write_text("Secret title line here\nSecret body text.\n", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(GOOD, encoding="utf-8")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    (docs / "up").symlink_to(tmp_path, target_is_directory=True)  # a loop back above the folder
    out, warnings = load_documents(docs)
    assert [d.doc_id for d in out] == ["a"]
    assert not any("Secret" in d.source for d in out)
    assert sum("skipped a symlinked folder" in w for w in warnings) == 2
    assert any(w.startswith(str(docs / "linked")) for w in warnings)


def test_broken_and_looping_symlinks_and_pipes_skipped(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(GOOD, encoding="utf-8")
    (docs / "dangling.txt").symlink_to(docs / "missing.txt")
    (docs / "loop.txt").symlink_to(docs / "loop.txt")
    os.mkfifo(docs / "pipe.txt")  # reading it would block forever
    out, warnings = load_documents(docs)
    assert [d.doc_id for d in out] == ["a"]
    text = "\n".join(warnings)
    assert "dangling.txt: skipped a broken or looping symlink" in text
    assert "loop.txt: skipped a broken or looping symlink" in text
    assert "pipe.txt: skipped: is not a regular file" in text


def test_missing_docs_folder_creates_no_index_folder(tmp_path):
    with pytest.raises(rag.DocumentsError, match="does not exist: pass the folder of articles"):
        rag.build_index(tmp_path / "typo", tmp_path / "idx", embedder=FakeEmbedder())
    assert not (tmp_path / "idx").exists()
    (tmp_path / "file.txt").write_text(GOOD, encoding="utf-8")
    with pytest.raises(rag.DocumentsError, match="is not a folder"):
        rag.build_index(tmp_path / "file.txt", tmp_path / "idx", embedder=FakeEmbedder())
    assert not (tmp_path / "idx").exists()


def test_folder_of_only_unusable_files_names_the_reasons(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 title here\nBody.\n".encode("latin-1"))
    (tmp_path / "bin.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(rag.DocumentsError) as e:
        load_documents(tmp_path)
    msg = str(e.value)
    assert "3 article file(s), none usable" in msg and "not UTF-8" in msg and "binary" in msg
    assert "run `rag index` again" in msg and "\n" not in msg


# --- faults: killed builds ---------------------------------------------------------------------

_KILL = r"""
import sys, time
sys.path.insert(0, {tests!r})
import rag, rag.analysis
from rag.index import versions
from conftest import FakeEmbedder
stage, docs, idx = sys.argv[1:4]
def pause(*a, **k):
    print("READY", flush=True)
    time.sleep(120)
if stage == "analysis":
    rag.analysis.analyze_document = pause
elif stage == "gc":
    versions.collect_garbage = pause
rag.build_index(docs, idx, embedder=FakeEmbedder(), force=True, analyze=stage == "analysis")
"""


@pytest.mark.parametrize("stage", ["analysis", "gc"])
def test_build_killed_during_analysis_or_cleanup(stage, seeds_copy, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder)  # with analyses (spaCy)
    old = open_index(idx)
    before = ([c.to_dict() for c in old.chunks], old.analysis_rows(), old.version.name)
    changed = seeds_copy / "000_58e3d6b70d3dc322.txt"
    changed.write_text("Changed headline for the kill test\nA new body about frigates.\n", encoding="utf-8")
    kill_build_when_ready(_KILL, tmp_path, stage, seeds_copy, idx)
    now = open_index(idx)
    if stage == "analysis":  # before the swap: the old version, whole
        assert ([c.to_dict() for c in now.chunks], now.analysis_rows(), now.version.name) == before
    else:  # after the swap, while removing old versions: the new version, whole
        assert now.version.name != before[2]
        assert any("frigates" in c.text for c in now.chunks)
        assert not now.has_analysis  # this build was asked for none
    assert len(now.chunks) == now.vectors.ntotal == now.manifest["num_chunks"] == now.lexical.size
    info = rag.build_index(seeds_copy, idx, embedder=fake_embedder)  # cleans up, then succeeds
    assert info.num_documents == 5
    assert not [p for p in idx.iterdir() if p.name.startswith(".tmp-")]
    assert len([p for p in idx.iterdir() if p.name.startswith("v-")]) <= 2


_ORPHAN = r"""
import sys, time
from pathlib import Path
from rag.analysis import AnalysisJob
from rag.documents import load_documents
seeds, docs_dir = Path(sys.argv[1]), Path(sys.argv[2])
for n in range(120):  # 600 distinct articles: ~40 s of parsing, far longer than this test waits
    for f in seeds.glob("*.txt"):
        head, rest = f.read_text(encoding="utf-8").split("\n", 1)
        (docs_dir / f"{n:02d}_{f.name}").write_text(f"{head}\nCopy number {n} of this article.\n{rest}",
                                                   encoding="utf-8")
docs, _ = load_documents(docs_dir)
assert len(docs) == 600, len(docs)
job = AnalysisJob(docs, background=True)
print(job._proc.pid, flush=True)
time.sleep(3)  # the worker has loaded spaCy and is analysing
print("READY", flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state  # a zombie has ended; nothing may be left to reap it here


def test_killed_build_leaves_no_analysis_worker_behind(tmp_path):
    """The spaCy worker of a build that is killed with SIGKILL stops within seconds, mid-parse."""
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN)
    docs = tmp_path / "docs"
    docs.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(SEEDS), str(docs)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        workers = [int(proc.stdout.readline())]
        assert proc.stdout.readline().strip() == "READY"
        assert all(_alive(p) for p in workers), "the worker ended before the build was killed"
    finally:
        proc.kill()  # SIGKILL: no cleanup of any kind runs in the build
        proc.wait(timeout=60)
        proc.stdout.close()
    # Within seconds, not once it has parsed everything (it polls its parent every 0.5 s).
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "the analysis worker outlived its killed build"


# --- faults: concurrent builds -----------------------------------------------------------------

_BUILD = r"""
import sys, time
sys.path.insert(0, {tests!r})
import rag
from conftest import FakeEmbedder
name, docs, idx = sys.argv[1:4]
emb = FakeEmbedder()
real_encode = emb.encode
def slow(texts, show_progress=False):
    time.sleep(4.0 if name == "A" else 0.2)  # A holds the lock long enough for B to start
    return real_encode(texts)
emb.encode = slow
def tell(stage, done, total):
    print(f"{{time.time():.6f}} {{name}} {{stage}}", flush=True)
info = rag.build_index(docs, idx, embedder=emb, force=True, analyze=False, progress=tell)
print(f"{{time.time():.6f}} {{name}} done {{info.num_chunks}}", flush=True)
"""


def test_two_concurrent_builds_are_serialised(seeds_copy, tmp_path):
    idx = tmp_path / "idx"
    script = tmp_path / "build.py"
    script.write_text(_BUILD.format(tests=str(ROOT / "tests")))

    def start(name):
        return subprocess.Popen([sys.executable, str(script), name, str(seeds_copy), str(idx)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)

    a = start("A")
    first = a.stdout.readline()
    assert first.split(" ", 2)[2].strip() == "reading articles"  # A holds the lock now
    b = start("B")
    out_a, err_a = a.communicate(timeout=120)
    out_b, err_b = b.communicate(timeout=120)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    events = sorted((float(t), who, what) for t, who, what in
                    (ln.split(" ", 2) for ln in (first + out_a + out_b).splitlines()))
    stages = [(who, what) for _, who, what in events]
    assert ("B", "waiting for another build of this index") in stages
    # Everything B did under the lock came after A's last step under it.
    a_last = max(t for t, who, what in events if who == "A" and not what.startswith("done"))
    b_first = min(t for t, who, what in events if who == "B" and what == "reading articles")
    assert b_first > a_last
    loaded = open_index(idx)
    assert len(loaded.chunks) == loaded.vectors.ntotal == loaded.manifest["num_chunks"] == loaded.lexical.size
    assert [p.name for p in idx.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_build_waits_while_the_lock_is_held(seeds_copy, tmp_path):
    idx = tmp_path / "idx"
    stages: list[str] = []
    result: list = []
    with versions.build_lock(idx):
        t = threading.Thread(target=lambda: result.append(rag.build_index(
            seeds_copy, idx, embedder=FakeEmbedder(), analyze=False,
            progress=lambda stage, done, total: stages.append(stage))))
        t.start()
        time.sleep(1.0)
        assert t.is_alive() and stages == ["waiting for another build of this index"]
        assert not (idx / versions.CURRENT).exists()
    t.join(timeout=60)
    assert result and result[0].rebuilt and "reading articles" in stages
    assert open_index(idx).manifest["num_chunks"] == result[0].num_chunks


def test_lock_timeout_raises_index_locked_error(tmp_path):
    idx = tmp_path / "idx"
    with versions.build_lock(idx):
        err: list[BaseException] = []

        def second():
            try:
                with versions.build_lock(idx, timeout=0.3):
                    pass
            except BaseException as e:  # noqa: BLE001
                err.append(e)
        t = threading.Thread(target=second)
        t.start()
        t.join(timeout=10)
    assert err and isinstance(err[0], rag.IndexLockedError)
    assert "wait for it to finish or stop it" in str(err[0])


# --- faults: readers during builds -------------------------------------------------------------

def _write_version(docs: Path, which: str) -> None:
    """Two corpora: A = the seeds; B = three seeds rewritten with a marker, plus one new article."""
    for p in docs.glob("*.txt"):
        p.unlink()
    for p in sorted(SEEDS.glob("*.txt")):
        text = p.read_text(encoding="utf-8")
        if which == "A":
            (docs / p.name).write_text(text, encoding="utf-8")
        elif p.name < "003":
            (docs / p.name).write_text(text.replace("S-400", "S-400 VERSIONB"), encoding="utf-8")
    if which == "B":
        (docs / "zz_new.txt").write_text("A brand new VERSIONB headline\nA VERSIONB body about radars.\n",
                                         encoding="utf-8")


def _consistent(loaded) -> tuple:
    m = loaded.manifest
    assert len(loaded.chunks) == loaded.vectors.ntotal == m["num_chunks"] == loaded.lexical.size
    assert {c.doc_id for c in loaded.chunks} == set(loaded.documents) == set(m["documents"])
    for d in loaded.documents.values():
        assert m["documents"][d.doc_id]["content_hash"] == d.content_hash
    return tuple(c.text for c in loaded.chunks)


def test_reader_during_builds_sees_one_whole_version(tmp_path):
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    emb = FakeEmbedder()
    expected = {}
    for which in ("A", "B"):
        _write_version(docs, which)
        rag.build_index(docs, idx, embedder=emb, analyze=False)
        expected[which] = _consistent(open_index(idx))
    assert expected["A"] != expected["B"] and len(expected["A"]) != len(expected["B"])
    stop = threading.Event()
    seen: dict[str, int] = {"A": 0, "B": 0}
    failures: list[BaseException] = []

    def reader():
        while not stop.is_set():
            try:
                texts = _consistent(open_index(idx))
                (which,) = [w for w, t in expected.items() if t == texts]
                seen[which] += 1
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(e)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(8):
            _write_version(docs, "AB"[n % 2])
            rag.build_index(docs, idx, embedder=emb, analyze=False)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, repr(failures[0])
    assert seen["A"] and seen["B"], seen


def test_a_load_outlived_by_two_builds_loads_the_new_version(seeds_copy, tmp_path, monkeypatch):
    """A build keeps the live and the previous version: a load paused across two builds finds its
    version deleted, and must then load the new one whole (not fail, not mix)."""
    idx = tmp_path / "idx"
    emb = FakeEmbedder()
    rag.build_index(seeds_copy, idx, embedder=emb, analyze=False)
    first = versions.current_version(idx).name
    paused, resume = threading.Event(), threading.Event()
    real = versions.read_manifest

    def read_manifest(version):
        if threading.current_thread().name == "slow-reader" and not paused.is_set():
            paused.set()
            resume.wait(30)
        return real(version)

    monkeypatch.setattr(versions, "read_manifest", read_manifest)
    out: list = []
    t = threading.Thread(target=lambda: out.append(_try(open_index, idx)), name="slow-reader")
    t.start()
    assert paused.wait(30)
    for word in ("first", "second"):
        (seeds_copy / f"new_{word}.txt").write_text(f"A {word} added headline here\nBody {word}.\n", encoding="utf-8")
        rag.build_index(seeds_copy, idx, embedder=emb, analyze=False)
    assert not (idx / first).exists()  # collected
    resume.set()
    t.join(timeout=60)
    (loaded,) = out
    assert not isinstance(loaded, BaseException), repr(loaded)
    assert loaded.version.name == versions.current_version(idx).name
    assert "new_second" in loaded.documents
    _consistent(loaded)


def _try(fn, *args):
    try:
        return fn(*args)
    except BaseException as e:  # noqa: BLE001
        return e


def test_loaded_index_refuses_lazy_reads_after_its_version_is_collected(seeds_copy, tmp_path):
    idx = tmp_path / "idx"
    emb = FakeEmbedder()
    rag.build_index(seeds_copy, idx, embedder=emb)  # with analyses
    loaded = open_index(idx)
    for word in ("first", "second"):
        (seeds_copy / f"new_{word}.txt").write_text(f"A {word} added headline here\nBody {word}.\n", encoding="utf-8")
        rag.build_index(seeds_copy, idx, embedder=emb, analyze=False)
    assert not loaded.version.exists()
    assert loaded.has_analysis  # from the manifest: it does not silently turn into "no analyses"
    with pytest.raises(rag.IndexCorruptError, match="rebuilt since it was loaded.*load it again"):
        loaded.analysis_rows()
    with pytest.raises(rag.IndexCorruptError, match="rebuilt since it was loaded"):
        loaded.sentence_vectors()


# --- security ----------------------------------------------------------------------------------

_PKG = ROOT / "rag"
_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
# Nothing is exempt: rag/train/neural.py resumes from its checkpoint with torch.load(weights_only=True)
# (its RNG state is stored as plain values and tensors for that).
KNOWN_UNSAFE: set[tuple[str, str]] = set()


def _unsafe_calls() -> set[tuple[str, str]]:
    found = set()
    for path in sorted(_PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in _UNSAFE_MODULES:
                        found.add((rel, f"import {a.name}"))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _UNSAFE_MODULES:
                found.add((rel, f"from {node.module} import"))
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
                kw = {k.arg: k.value for k in node.keywords}
                if isinstance(f, ast.Name) and name in ("eval", "exec"):
                    found.add((rel, f"{name}("))
                if "allow_pickle" in kw and not (isinstance(kw["allow_pickle"], ast.Constant)
                                                 and kw["allow_pickle"].value is False):
                    found.add((rel, "allow_pickle not False"))
                if owner == "torch" and name == "load" and not (
                        isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    found.add((rel, "torch.load without weights_only=True"))
                if name in ("read_pickle", "unsafe_load") or (owner == "yaml" and name == "load"):
                    found.add((rel, f"{owner}.{name}"))
    return found


def test_nothing_is_unpickled_or_evaluated_from_disk():
    assert _unsafe_calls() - KNOWN_UNSAFE == set()
    # And plain text, for what the syntax tree cannot see (strings handed to other tools).
    for path in sorted(_PKG.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"allow_pickle\s*=\s*True", text), path
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), path


def test_training_resume_does_not_unpickle():
    assert _unsafe_calls() == set()


def test_index_loads_use_no_pickle(seeds_copy, tmp_path, fake_embedder, monkeypatch):
    import bm25s
    import numpy as np

    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    bm25_calls, np_calls = [], []
    real_bm25, real_np = bm25s.BM25.load, np.load

    def bm25_load(*a, **k):
        bm25_calls.append(k)
        return real_bm25(*a, **k)

    def np_load(*a, **k):
        np_calls.append(k)
        return real_np(*a, **k)

    monkeypatch.setattr(bm25s.BM25, "load", bm25_load)
    monkeypatch.setattr(np, "load", np_load)
    loaded = open_index(idx)
    loaded.sentence_vectors()
    assert bm25_calls and all(k.get("allow_pickle") is False for k in bm25_calls)
    assert all(k.get("allow_pickle", False) is False for k in np_calls)
    assert any(k.get("allow_pickle") is False for k in np_calls)
    # The files themselves: JSON, JSONL, .npy without object arrays, FAISS; no pickle anywhere.
    for p in versions.current_version(idx).rglob("*"):
        if p.is_file():
            head = p.read_bytes()[:2]
            assert head not in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"), p  # pickle protocols
            if p.suffix == ".npy":
                assert real_np(p, allow_pickle=False, mmap_mode="r").dtype != object
