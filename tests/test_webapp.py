"""The chat app end to end: real model, real FAISS, a real server on 127.0.0.1, gradio_client calls."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

# gradio's own queue code warns about pandas deprecations on every call: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

SHUGAYEV_Q = "Who heads Russia's Federal Service for Military and Technical Cooperation?"
SHUGAYEV_DOC = "001_1040b1609e3dded8"
ABSTAIN_Q = "What is the chemical symbol for gold?"  # nothing in the articles is about it
HOSTILE_Q = "Who designed the Quorlix radar?"

HOSTILE_ARTICLE = """Quorlix radar programme reaches its first milestone

The Quorlix radar was designed by Tamsin Oakhollow at the Brenvale laboratory in 2011.
Engineers joked that <script>window.__xss=1</script> was the radar's real codename.
A test image was embedded as <img src=x onerror="window.__xss=2"> in the original page.
The brochure also carried ![img](http://example.invalid/x.png) next to a **bold** claim and a $5 million price.
The Quorlix radar entered service with the Brenvale coastal guard in 2014.
"""

# (question, a word the answer must contain) - distinct answers from distinct articles
KNOWN = [
    (SHUGAYEV_Q, "Shugayev"),
    ("Which company manufactures the F-35?", "Lockheed"),
    ("Which Russian media outlet put out a video of the Prometheus?", "Novosti"),
    ("On which day of the week did Cavusoglu and Lavrov hold their talks?", "Friday"),
    (HOSTILE_Q, "Oakhollow"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_corpus(root: Path) -> Path:
    docs = root / "docs"
    shutil.copytree(ROOT / "seeds", docs)
    (docs / "hostile_quorlix.txt").write_text(HOSTILE_ARTICLE, encoding="utf-8")
    return docs


def prepared_corpus(tmp_path_factory, name: str) -> tuple[Path, Path]:
    """A private copy of seeds + the hostile article and an index of them.

    The index is built once per test session, the first time through the app's own Engine (the
    first-run path of ``python app.py``); every caller gets a copy, which the Engine brings up to
    date incrementally (the folder moved: nothing is embedded again).
    """
    from rag.web.engine import Engine

    template = tmp_path_factory.getbasetemp() / "corpus-template"
    if not (template / "index" / "CURRENT").exists():
        shutil.rmtree(template, ignore_errors=True)
        template.mkdir()
        stages = []
        engine = Engine(make_corpus(template), template / "index", log=lambda s, d, t: stages.append(s))
        info = engine.refresh()
        assert info is not None and info.rebuilt and info.num_documents == 6, info
        assert "embedding chunks" in stages and any(s.startswith("ready") for s in stages), stages
    dest = tmp_path_factory.mktemp(name)
    shutil.copytree(template / "docs", dest / "docs")
    shutil.copytree(template / "index", dest / "index")
    return dest / "docs", dest / "index"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from rag.web.app import build_app, launch
    from rag.web.engine import Engine

    docs, index = prepared_corpus(tmp_path_factory, "app")
    # The page's behaviour, not a reader's accuracy, is under test here: pin the reader so the expected
    # answers do not depend on the machine's default (mpnet on native-bf16 CPUs, fast elsewhere; the
    # MPNet reader's own end-to-end test is tests/test_mpnet_reader.py).
    engine = Engine(docs, index, stale_check_seconds=0.0, reader="fast")  # notice changed articles on every question
    info = engine.refresh()
    assert info is not None and info.encoded_chunks == 0  # the moved copy is reused, not re-embedded
    app = build_app(docs, index, engine=engine)
    _, url, _ = launch(app, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield {"url": url, "docs": docs, "index": index, "engine": engine}
    finally:
        app.close()


@pytest.fixture(scope="module")
def client(served):
    return Client(served["url"], verbose=False)


def source(docs: Path, doc_id: str) -> str:
    return (docs / f"{doc_id}.txt").read_text(encoding="utf-8")


def check_offsets(docs: Path, d: dict) -> None:
    """text == source[start:end] for the answer, its evidence and every citation."""
    if d["text"] is not None:
        assert source(docs, d["doc_id"])[d["start"]:d["end"]] == d["text"]
        ev = d["evidence"]
        assert ev["doc_id"] == d["doc_id"] and ev["start"] <= d["start"] and d["end"] <= ev["end"]
        assert source(docs, ev["doc_id"])[ev["start"]:ev["end"]] == ev["text"]
    for c in d["citations"]:
        assert source(docs, c["doc_id"])[c["start"]:c["end"]] == c["text"]
    for alt in d["alternatives"]:
        check_offsets(docs, alt)


def message_text(msg: dict) -> str:
    content = msg["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content


def last_reply(history: list[dict]) -> str:
    assert history[-1]["role"] == "assistant" and history[-2]["role"] == "user"
    return message_text(history[-1])


# --- /ask -------------------------------------------------------------------------------------------

def test_ask_endpoint_answers_with_exact_offsets(client, served):
    d = client.predict(SHUGAYEV_Q, api_name="/ask")
    assert d["question"] == SHUGAYEV_Q
    assert d["text"] is not None and "Shugayev" in d["text"]
    assert d["doc_id"] == SHUGAYEV_DOC
    assert 0.0 <= d["score"] <= 1.0
    assert d["citations"] and d["citations"][0]["doc_id"] == SHUGAYEV_DOC
    check_offsets(served["docs"], d)


def test_ask_endpoint_abstains_and_still_cites_closest_passages(client, served):
    d = client.predict(ABSTAIN_Q, api_name="/ask")
    assert d["text"] is None
    assert d["doc_id"] is None
    assert d["citations"], "an abstention still lists the closest passages"
    # no k given: the reader's tuned k, which the page's slider starts at
    assert served["engine"].k == served["engine"].current().read_k
    assert len(d["citations"]) <= served["engine"].k
    check_offsets(served["docs"], d)


def test_ask_endpoint_settings(client, served):
    d = client.predict(SHUGAYEV_Q, 3, "bm25", 0.0, api_name="/ask")
    assert d["text"] is not None and "Shugayev" in d["text"]
    check_offsets(served["docs"], d)
    d = client.predict(ABSTAIN_Q, 2, "dense", api_name="/ask")
    assert d["text"] is None and 1 <= len(d["citations"]) <= 2


@pytest.mark.parametrize("question, settings, says", [
    ("x" * 1001, (), "1,000"),
    ("   ", (), "empty"),
    ("Who heads \x07 Rosoboronexport?", (), "control"),
    (SHUGAYEV_Q, (5, "fuzzy"), "mode"),
    (SHUGAYEV_Q, (0,), "k must"),
])
def test_ask_endpoint_bad_input_gives_a_message(client, question, settings, says):
    with pytest.raises(Exception) as err:
        client.predict(question, *settings, api_name="/ask")
    assert says in str(err.value)


def test_the_threshold_slider_follows_each_k_the_reader_calibrated(served):
    """Each k the reader's dev sweep calibrated has its own threshold, which the slider moves to when
    k changes; a k dev never saw keeps the chosen setting's."""
    from rag.readers.settings import Calibrator, Tuning, setting_key

    engine = served["engine"]
    answerer = engine.current().answerer
    k = answerer.chosen[0]
    assert engine.threshold_for(k) == engine.threshold == round(answerer.threshold, 2)
    assert engine.threshold_for(k + 2) == engine.threshold  # not calibrated: the chosen setting's
    assert engine.threshold_for(None) == engine.threshold
    key = setting_key(k + 2, answerer.context, answerer.windows)
    answerer.tunings[key] = Tuning(Calibrator(), 0.8765, "sweep")
    try:
        assert engine.threshold_for(k + 2) == 0.88 and engine.threshold_for(k) == engine.threshold
    finally:
        del answerer.tunings[key]


# --- the chat reply -----------------------------------------------------------------------------------

def test_chat_reply_shows_answer_mark_and_citations(client, served):
    history, box, cites = client.predict(SHUGAYEV_Q, [], 5, "hybrid", served["engine"].threshold, api_name="/chat")
    html = last_reply(history)
    assert box == ""
    assert 'class="rag-answer"' in html and "Shugayev" in html
    assert "<mark>" in html and "[1]" in html
    assert "<details" in html and "Open the full article" in html
    assert cites.splitlines()[0].startswith(f"[1] {SHUGAYEV_DOC} [")


def test_chat_abstention_says_so_and_shows_closest_passages(client, served):
    history, _, cites = client.predict(ABSTAIN_Q, [], 5, "hybrid", served["engine"].threshold, api_name="/chat")
    html = last_reply(history)
    assert "Not in these articles" in html
    assert 'class="rag-cite"' in html and cites.count("\n") >= 1


def test_chat_escapes_hostile_article_and_question(client, served):
    question = HOSTILE_Q + " <b>now</b>"
    history, _, cites = client.predict(question, [], 5, "hybrid", served["engine"].threshold, api_name="/chat")
    html = last_reply(history)
    asked = message_text(history[-2])
    assert "hostile_quorlix" in cites
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;window.__xss=2&quot;&gt;" in html
    assert "![img](http://example.invalid/x.png)" in html  # literal text: Markdown is never rendered
    low = html.lower()
    assert "<script" not in low and "<img" not in low and "onerror=\"" not in low
    assert "&lt;b&gt;now&lt;/b&gt;" in asked and "<b>" not in asked


def test_chat_too_long_question_is_a_friendly_message(client, served):
    long_q = "Why " * 400
    history, box, cites = client.predict(long_q, [], 5, "hybrid", served["engine"].threshold, api_name="/chat")
    html = last_reply(history)
    assert "rag-notice" in html and "1,000" in html
    assert box == long_q and cites == ""  # the question stays in the box to be shortened


def test_render_disagreement_side_by_side_with_marked_spans():
    """Rendering alone (no server): competing answers side by side, spans marked where they fall."""
    from rag.documents import parse_article
    from rag.schema import Answer, Passage
    from rag.web.render import citation_lines, render_reply

    def span(doc_id: str, words: str, score: float, tamper: str = ""):
        src = (ROOT / "seeds" / f"{doc_id}.txt").read_text(encoding="utf-8")
        doc = parse_article(src, doc_id)
        i = src.index(words)
        s0 = src.rfind("\n", 0, i) + 1
        s1 = src.index("\n", i)
        title = doc.title + tamper
        sentence = Passage(doc_id, title, src[s0:s1], s0, s1, score)
        return Answer(text=words, score=score, doc_id=doc_id, start=i, end=i + len(words), evidence=sentence,
                      citations=[sentence], question="q"), (doc, src)

    main, main_src = span(SHUGAYEV_DOC, "Dmitry Shugayev", 0.81, tamper=" <b>x</b>")
    alt, alt_src = span("002_907407133a9267c9", "Alexander Mikheyev", 0.62)
    ans = dataclasses.replace(main, alternatives=[alt])
    sources = {SHUGAYEV_DOC: main_src, "002_907407133a9267c9": alt_src}
    html = render_reply(ans, sources.get)
    assert html.count('class="rag-alt"') == 2 and "The sources disagree" in html
    assert "confidence 81%" in html and "confidence 62%" in html
    assert html.count("<mark>Dmitry Shugayev</mark>") >= 3  # evidence, card, citation (+ full article)
    assert html.count("<mark>Alexander Mikheyev</mark>") >= 2
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html
    assert "\n" not in html
    lines = citation_lines(ans).splitlines()
    ev, alt_ev = main.evidence, alt.evidence
    assert lines == [f"[1] {SHUGAYEV_DOC} [{ev.start}:{ev.end}] {ev.title}",
                     f"[2] 002_907407133a9267c9 [{alt_ev.start}:{alt_ev.end}] {alt_ev.title}"]


# --- concurrency --------------------------------------------------------------------------------------

def test_concurrent_questions_get_their_own_answers(client, served):
    baseline = {q: client.predict(q, api_name="/ask") for q, _ in KNOWN}
    for q, word in KNOWN:
        assert baseline[q]["text"] and word in baseline[q]["text"], (q, baseline[q]["text"])
    jobs = [KNOWN[i % len(KNOWN)] for i in range(20)]

    def call(job):
        q, _ = job
        return client.predict(q, api_name="/ask")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, jobs))
    for (q, word), d in zip(jobs, results):
        assert d["question"] == q
        assert d["text"] and word in d["text"], (q, d["text"])
        want = baseline[q]
        assert (d["doc_id"], d["start"], d["end"], d["text"]) == (want["doc_id"], want["start"], want["end"],
                                                                  want["text"])


# --- uploads and changed articles ---------------------------------------------------------------------

def snapshot(docs: Path, index: Path) -> dict:
    files = {p.relative_to(docs).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(docs.rglob("*")) if p.is_file()}
    return {"docs": files, "current": (index / "CURRENT").read_text(), "index": sorted(os.listdir(index))}


def ship_article(yard: str, vessel: str, port: str) -> str:
    return (f"{yard} Shipyards launches a patrol vessel\n\n{yard} Shipyards launched the patrol vessel {vessel} at "
            f"its yard in the port of {port} on Friday.\nThe vessel is the first of four ordered by the coast guard.\n")


def ship_question(yard: str, vessel: str) -> str:
    return f"In which port did {yard} Shipyards launch the patrol vessel {vessel}?"


def check_answered_from(served, d: dict, doc_id: str, word: str) -> None:
    """The answer comes from ``doc_id``, at exact offsets, from the sentence that holds ``word``."""
    assert d["text"] is not None and d["doc_id"] == doc_id, d
    assert word in d["evidence"]["text"], d
    check_offsets(served["docs"], d)


def test_upload_rejects_bad_files_and_changes_nothing(client, served, tmp_path):
    docs, index = served["docs"], served["index"]
    before = snapshot(docs, index)
    good = tmp_path / "fine_article.txt"
    good.write_text(ship_article("Vexmoor", "Talzane", "Orrisby"), encoding="utf-8")
    cases = {
        "latin1.txt": ("Caf\xe9 owners protest\n\nThe caf\xe9 owners of Brest protested on Monday.\n"
                       .encode("latin-1"), "UTF-8"),
        "binary.txt": (b"Title line here\n\nBody\x00\x01\x02 text", "binary"),
        "empty.txt": (b"  \n", "empty"),
        "title_only.txt": (b"Only a title line with words\n", "no article body"),
        "copy_of_seed.txt": ((ROOT / "seeds" / f"{SHUGAYEV_DOC}.txt").read_bytes(), "already indexed"),
    }
    for name, (data, reason) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(data)
        msg, status, _ = client.predict([handle_file(str(good)), handle_file(str(bad))], api_name="/upload")
        assert "Nothing was added" in msg, msg
        assert f"{name}:" in msg and reason in msg, msg
        assert "fine_article.txt:" not in msg  # only the bad file is blamed
        assert snapshot(docs, index) == before


def test_upload_valid_article_becomes_answerable(client, served, tmp_path):
    docs = served["docs"]
    text = ship_article("Brindle", "Corvane", "Kestwick")
    art = tmp_path / "brindle.txt"
    art.write_text(text, encoding="utf-8")
    msg, status, files = client.predict([handle_file(str(art))], api_name="/upload")
    assert "Added 1 article" in msg and "uploads/brindle" in msg, msg
    assert (docs / "uploads" / "brindle.txt").read_text(encoding="utf-8") == text
    d = client.predict(ship_question("Brindle", "Corvane"), api_name="/ask")
    check_answered_from(served, d, "uploads/brindle", "Kestwick")
    assert "Kestwick" in d["text"]

    # Same name, different text: saved beside it, the first file untouched.
    other = tmp_path / "again" / "brindle.txt"
    other.parent.mkdir()
    other.write_text(ship_article("Harrowgate", "Mistral Kay", "Pelworth"), encoding="utf-8")
    msg, _, _ = client.predict([handle_file(str(other))], api_name="/upload")
    assert "uploads/brindle-2" in msg, msg
    assert (docs / "uploads" / "brindle.txt").read_text(encoding="utf-8") == text
    d = client.predict(ship_question("Harrowgate", "Mistral Kay"), api_name="/ask")
    check_answered_from(served, d, "uploads/brindle-2", "Pelworth")


def test_articles_changed_on_disk_are_reindexed(client, served):
    docs = served["docs"]
    (docs / "later").mkdir(exist_ok=True)
    (docs / "later" / "ostmark.txt").write_text(ship_article("Ostmark", "Valkyra", "Dunmarrow"), encoding="utf-8")
    d = client.predict(ship_question("Ostmark", "Valkyra"), api_name="/ask")
    check_answered_from(served, d, "later/ostmark", "Dunmarrow")
    assert not served["engine"].current().stale()


# --- entry points -------------------------------------------------------------------------------------

def test_cli_never_imports_gradio():
    code = "import sys, rag, rag.cli; rag.cli._parser(); print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@contextlib.contextmanager
def serving(cmd: list[str], cwd: Path, env: dict[str, str], ready: str = "index: ready", wait_s: float = 120):
    """Start a page server process, yield its console log up to the ``ready`` line, then stop it.

    A watchdog kills a process that hangs; the log read stops at ``ready``, at EOF or after ``wait_s``.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(wait_s + 30, proc.kill)
    watchdog.start()
    try:
        log, deadline = [], time.monotonic() + wait_s
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            log.append(line)
            if ready in line:
                break
        yield "".join(log)
    finally:
        watchdog.cancel()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_app_py_builds_on_first_run_and_serves(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ship.txt").write_text(ship_article("Ostmark", "Valkyra", "Dunmarrow"), encoding="utf-8")
    index = tmp_path / "index"
    port = free_port()
    env = {**os.environ, "RAG_PORT": str(port)}
    with serving([sys.executable, str(ROOT / "app.py"), "--docs", str(docs), "--index", str(index)],
                 tmp_path, env) as text:
        assert "index: ready" in text, text
        assert "embedding chunks" in text, text  # console progress of the first build
        d = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(ship_question("Ostmark", "Valkyra"),
                                                                        api_name="/ask")
        assert d["doc_id"] == "ship" and "Dunmarrow" in d["evidence"]["text"], d
        assert (index / "CURRENT").exists()


@pytest.mark.parametrize("args, says", [
    (["--host", "0.0.0.0"], "without a login"),
    (["--host", "0.0.0.0", "--auth", "alice"], "USER:PASSWORD"),
    (["--auth", ":pw"], "USER:PASSWORD"),
])
def test_rag_serve_refuses_an_open_network_page_and_a_malformed_login(tmp_path, args, says):
    env = {k: v for k, v in os.environ.items() if k != "RAG_AUTH"}
    out = subprocess.run([sys.executable, "-m", "rag.cli", "serve", "--docs", str(tmp_path), "--index",
                          str(tmp_path / "index"), "--port", str(free_port()), *args],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr
    assert "alice" not in out.stderr  # a login is never echoed back
    assert not (tmp_path / "index").exists()  # refused before anything is built


def test_rag_serve_with_a_login_and_uploads_off(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ship.txt").write_text(ship_article("Ostmark", "Valkyra", "Dunmarrow"), encoding="utf-8")
    port = free_port()
    env = {**os.environ, "RAG_AUTH": "alice:s3cret-pw"}  # the login through the environment
    with serving([sys.executable, "-m", "rag.cli", "serve", "--docs", str(docs), "--index", str(tmp_path / "index"),
                  "--port", str(port), "--no-upload"], tmp_path, env) as text:
        assert "index: ready" in text and "login required" in text and "uploads off" in text, text
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own error types
            Client(url, verbose=False).predict(ship_question("Ostmark", "Valkyra"), api_name="/ask")
        with pytest.raises(Exception):  # noqa: B017
            Client(url, auth=("alice", "wrong"), verbose=False)
        client = Client(url, auth=("alice", "s3cret-pw"), verbose=False)
        d = client.predict(ship_question("Ostmark", "Valkyra"), api_name="/ask")
        assert d["doc_id"] == "ship" and "Dunmarrow" in d["evidence"]["text"], d
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        assert "/ask" in endpoints and "/upload" not in endpoints
