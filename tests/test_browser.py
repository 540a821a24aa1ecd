"""The chat page in a real headless Chromium: ask, see the answer and a marked citation, screenshots."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from test_webapp import HOSTILE_Q, SHUGAYEV_Q, free_port, prepared_corpus, serving, ship_article, ship_question  # noqa: E402

# gradio's own queue code warns about pandas deprecations on every call: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
REPLY = "#rag-chat .rag-reply, #rag-chat .rag-notice"


def _need_browser():
    """Skip only when Chromium is absent outside CI; in CI a missing browser is a failure."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install playwright)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    _need_browser()
    from rag.web.app import build_app, launch
    from rag.web.engine import Engine

    docs, index = prepared_corpus(tmp_path_factory, "browser")
    engine = Engine(docs, index)
    engine.refresh()
    app = build_app(docs, index, engine=engine)
    _, local_url, _ = launch(app, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield local_url
    finally:
        app.close()


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def ask(page, question: str):
    """Type a question, press Ask, wait for the new reply; return the reply element."""
    before = page.locator(REPLY).count()
    page.fill("#rag-question textarea", question)
    page.click("#rag-send")
    page.wait_for_function(f"document.querySelectorAll({REPLY!r}).length > {before}", timeout=60_000)
    page.wait_for_timeout(600)  # the reply is scrolled into view after it renders
    return page.locator(REPLY).nth(before)


def open_page(browser, url: str, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    page.wait_for_selector("#rag-status .rag-ok", timeout=60_000)
    return page, errors


@pytest.mark.parametrize("name, width, height", [("narrow", 390, 844), ("wide", 1440, 900)])
def test_ask_shows_answer_and_marked_citation(browser, url, name, width, height):
    page, errors = open_page(browser, url, width, height)
    try:
        reply = ask(page, SHUGAYEV_Q)
        answer = reply.locator(".rag-answer")
        assert answer.is_visible()
        assert "Shugayev" in answer.inner_text()
        cite_mark = reply.locator(".rag-cite .rag-psg-text mark").first
        assert cite_mark.is_visible()
        assert "Shugayev" in cite_mark.inner_text()
        assert reply.locator(".rag-evidence mark").first.is_visible()
        # nothing is wider than the screen; the answer text is at least 14px
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = reply.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1
        size = float(answer.evaluate("e => getComputedStyle(e.querySelector('.rag-text')).fontSize").rstrip("px"))
        assert size >= 14
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"chat-{name}.png"))
        # the full article opens in place with the span marked
        reply.locator("details.rag-full summary").first.click()
        assert reply.locator(".rag-article mark").first.is_visible()
        assert errors == []
    finally:
        page.close()


def test_question_about_something_absent_says_why(browser, url):
    """A question naming something no article mentions: "Not in these articles", the reason, and
    the closest passages still listed."""
    page, errors = open_page(browser, url, 1440, 900)
    try:
        reply = ask(page, "Which country placed an order for Oshkosh JLTVs?")
        box = reply.locator(".rag-abstain")
        assert box.is_visible()
        text = box.inner_text()
        assert "Not in these articles." in text and "No article mentions 'Oshkosh', 'JLTVs'." in text, text
        assert reply.locator(".rag-answer").count() == 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "chat-abstain.png"))
        assert errors == []
    finally:
        page.close()


def test_hostile_article_renders_as_plain_text(browser, url):
    page, errors = open_page(browser, url, 1000, 900)
    try:
        reply = ask(page, HOSTILE_Q + " <img src=y onerror=\"window.__xss=3\">")
        text = reply.inner_text()
        assert "<script>window.__xss=1</script>" in text
        assert "![img](http://example.invalid/x.png)" in text
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.locator("#rag-chat img").count() == 0
        assert page.locator("#rag-chat script").count() == 0
        assert page.locator("#rag-chat .rag-q").last.inner_text().endswith('onerror="window.__xss=3">')
        assert errors == []
    finally:
        page.close()


def test_example_fills_the_question_box_and_settings_apply(browser, url):
    page, _ = open_page(browser, url, 1200, 900)
    try:
        example = "How many CV90 vehicles did the army order?"
        page.locator("#rag-examples").get_by_text(example).first.click()
        page.wait_for_function(f"document.querySelector('#rag-question textarea').value === {example!r}",
                               timeout=10_000)
        page.get_by_label("dense").check()
        reply = ask(page, page.input_value("#rag-question textarea"))
        assert reply.locator(".rag-abstain, .rag-answer").count() == 1
        assert reply.locator(".rag-cite").count() >= 1
    finally:
        page.close()


def test_upload_a_web_page_and_a_pdf_then_ask_about_each(browser, tmp_path_factory):
    """A person adds a saved news page and a two-page PDF through "Add articles", then asks: the
    HTML page's fact is answered without its chrome, the PDF answer is cited with its page, and the
    full article opens on the page label. Its own server, so the other tests' corpus is untouched."""
    from rag.web.app import build_app, launch
    from rag.web.engine import Engine
    from test_formats import NEWS_HTML, PAGE1, PAGE2, _pdf

    docs, index = prepared_corpus(tmp_path_factory, "browser-upload")
    files = tmp_path_factory.mktemp("to-upload")
    (files / "bridge.html").write_text(NEWS_HTML, encoding="utf-8")
    _pdf(files / "Harbour Report.PDF", [PAGE1, PAGE2])
    engine = Engine(docs, index, reader="fast")
    engine.refresh()
    app = build_app(docs, index, engine=engine)
    _, local_url, _ = launch(app, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
    page, errors = None, []
    try:
        page, errors = open_page(browser, local_url, 1440, 1000)
        page.get_by_text("Add articles").first.click()
        page.locator("#rag-files input[type=file]").set_input_files(
            [str(files / "bridge.html"), str(files / "Harbour Report.PDF")])
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Add to the index").click()
        page.wait_for_function("document.querySelector('.rag-upload-msg') && "
                               "document.querySelector('.rag-upload-msg').innerText.includes('Added 2 articles')",
                               timeout=120_000)
        assert (docs / "uploads" / "bridge.html").exists() and (docs / "uploads" / "Harbour_Report.pdf").exists()
        reply = ask(page, "Who is the chief engineer of the Northgate harbour bridge?")
        assert "Maria Okafor" in reply.locator(".rag-answer").inner_text()
        assert "cookies" not in reply.inner_text() and "Related stories" not in reply.inner_text()
        reply = ask(page, "Who designed the new lighthouse at Cape Wrath?")
        assert "Ingrid Halvorsen" in reply.locator(".rag-answer").inner_text()
        refs = [r for r in reply.locator(".rag-cite .rag-ref").all_inner_texts() if "Harbour_Report" in r]
        assert refs and refs[0].endswith("p. 2"), refs
        reply.locator("details.rag-full summary").first.click()
        assert reply.locator(".rag-article .rag-page").filter(has_text="Page 2").first.is_visible()
        assert reply.locator(".rag-article mark").first.is_visible()
        reply.scroll_into_view_if_needed()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "chat-upload-pdf.png"), full_page=False)
        assert errors == []
    finally:
        if page is not None:
            page.close()
        app.close()


def test_rag_serve_on_the_network_asks_for_a_login_first(browser, tmp_path):
    """`rag serve --host 0.0.0.0 --auth USER:PASSWORD`: the browser gets a login form, a wrong
    password keeps it there, the right one opens the chat page (the refusal without --auth is
    test_webapp.py::test_rag_serve_refuses_an_open_network_page_and_a_malformed_login)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ship.txt").write_text(ship_article("Ostmark", "Valkyra", "Dunmarrow"), encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAG_AUTH"}
    with serving([sys.executable, "-m", "rag.cli", "serve", "--docs", str(docs), "--index", str(tmp_path / "index"),
                  "--host", "0.0.0.0", "--port", str(port), "--auth", "alice:s3cret-pw"], tmp_path, env) as log:
        assert "login required" in log and "s3cret" not in log, log
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        try:
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("input[type=password]", timeout=60_000)
            assert page.locator("#rag-question").count() == 0  # nothing of the chat page before the login
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "serve-login.png"))
            def log_in(password: str) -> None:
                page.locator("input[type=text], input:not([type])").first.fill("alice")
                page.fill("input[type=password]", password)
                page.get_by_role("button", name="Login").click()

            log_in("wrong")
            page.wait_for_timeout(2000)
            assert page.locator("#rag-question").count() == 0 and page.locator("input[type=password]").count() == 1
            log_in("s3cret-pw")
            page.wait_for_selector("#rag-question textarea", timeout=60_000)
            page.wait_for_selector("#rag-status .rag-ok", timeout=60_000)
            reply = ask(page, ship_question("Ostmark", "Valkyra"))
            assert "Dunmarrow" in reply.inner_text()
        finally:
            page.close()
