"""The chat page: a Gradio app over one index (``python app.py``). Only this module and app.py import gradio.

The index behind the page is ``rag.web.engine.Engine``; the HTML it shows comes from
``rag.web.render``.

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
import os
import sys
from pathlib import Path
from typing import Any

import rag
from rag import formats
from rag.pipeline import MAX_QUESTION_CHARS

from .engine import UPLOAD_MAX_BYTES, Engine, Tell
from .render import CSS, citation_lines, render_notice, render_question, render_reply, render_status

MODES = ("hybrid", "dense", "bm25")
MAX_K = 20

EXAMPLES = [
    "Who heads Russia's Federal Service for Military and Technical Cooperation?",
    "What was the S-400 deal reportedly worth?",
    "When did the deliveries of S-400 launchers to Turkey begin?",
    "How many CV90 vehicles did the army order?",
]

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




def _check_settings(k: Any, mode: Any, threshold: Any) -> tuple[int | None, str, float | None]:
    try:
        k = int(k) if k is not None else None  # None: the reader's tuned k
    except (TypeError, ValueError):
        raise rag.InputError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}") from None
    if k is not None and not 1 <= k <= MAX_K:
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

    def api_ask(question: str, k: int | None = None, mode: str = "hybrid", threshold: float | None = None) -> dict:
        """Answer a question from the articles: Answer.to_dict() (text is null when they do not say).
        ``k``: passages to read (default: the reader's tuned k)."""
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
            if threshold is not None and abs(threshold - engine.threshold_for(k)) < 1e-9:
                threshold = None  # the slider left at the tuned value for this k: use it unrounded
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
                gr.Slider(value=engine.threshold) if engine.ready else gr.skip(),
                gr.Slider(value=engine.k) if engine.ready else gr.skip())

    def poll():
        if engine.ready:
            return (render_status(engine.status, engine.docs_dir), gr.Timer(active=False),
                    gr.Slider(value=engine.threshold), gr.Slider(value=engine.k))
        return render_status(engine.status, engine.docs_dir), gr.skip(), gr.skip(), gr.skip()

    def clear():
        return [], "", ""

    def on_k(k):
        # each k the reader's dev sweep calibrated has its own threshold: the slider follows it
        return gr.Slider(value=engine.threshold_for(k)) if engine.ready else gr.skip()

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
                    k = gr.Slider(1, MAX_K, value=engine.k, step=1, label="Passages to read (k)")
                    mode = gr.Radio(list(MODES), value="hybrid", label="Retrieval",
                                    info="hybrid: words and meaning; dense: meaning; bm25: words")
                    threshold = gr.Slider(0.0, 1.0, value=engine.threshold, step=0.01,
                                          label="Abstention threshold",
                                          info="answer only at or above this confidence; moves to the value tuned on dev for each k that has one")
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
        k.change(on_k, [k], [threshold], api_visibility="private", queue=False, show_progress="hidden")
        if allow_upload:
            add.click(upload, [files], [upload_msg, status, files], api_name="upload", concurrency_limit=1)
        app.load(on_load, None, [status, timer, threshold, k], api_visibility="private", show_progress="hidden")
        timer.tick(poll, None, [status, timer, threshold, k], api_visibility="private", show_progress="hidden")
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
