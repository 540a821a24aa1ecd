"""The `rag` command: a thin argparse front over the library. Never imports gradio."""
from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

EXAMPLES = """\
examples:
  rag index seeds                     index the articles in seeds/ into index/
  rag search "Who heads Russia's Federal Service for Military and Technical Cooperation?"
  rag search "S-400 range" -k 3 --mode bm25 --json
  rag ask "What was the S-400 deal reportedly worth?"
  rag ask --file questions.txt --json one question per line in, one JSON answer per line out
  rag eval                            score retrieval and answers on evals/gold.jsonl
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rag", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Answer questions from a folder of plain-text articles, quoting the exact span "
                    "and citing where it stands, or saying plainly that the articles do not say.",
        epilog=EXAMPLES)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def index_opt(sp):
        sp.add_argument("--index", default="index", metavar="DIR", help="index folder (default: index)")

    sp = sub.add_parser("serve", help="serve the chat page (the same page as python app.py)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n  rag serve\n  rag serve --docs ~/articles --index ~/articles-index --port 8080\n"
                               "  rag serve --host 0.0.0.0 --auth alice:s3cret --no-upload\n")
    from rag.web.app import add_serve_arguments  # argparse only: gradio loads when the page starts
    add_serve_arguments(sp, Path.cwd())

    sp = sub.add_parser("index", help="build or update an index from a folder of articles (.txt, .html, .pdf, .md)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n  rag index seeds\n  rag index ~/articles --index ~/articles-index\n"
                               "  rag index seeds --index /tmp/mv --store milvus:///tmp/mv.db   # Milvus Lite\n"
                               "  rag index big/ --store milvus://milvus.example:19530 --ray ray://head:10001\n"
                               "Only new or changed articles are embedded again; deleted ones are dropped.")
    sp.add_argument("docs", nargs="?", default=None, metavar="DOCS",
                    help="folder of articles (.txt, .html, .htm, .pdf, .md, .markdown), searched recursively (default: the folder the index "
                         "was built from, else seeds)")
    index_opt(sp)
    sp.add_argument("--model", default=None, help="local sentence-transformers model folder (default: the "
                                                   "packaged all-MiniLM-L6-v2)")
    sp.add_argument("--chunk-tokens", type=int, default=None, help="chunk size in tiktoken tokens")
    sp.add_argument("--overlap-tokens", type=int, default=None, help="tokens shared by neighbouring chunks")
    sp.add_argument("--force", action="store_true", help="re-embed everything even if nothing changed")
    sp.add_argument("--json", action="store_true", help="print the IndexInfo as JSON")
    sp.add_argument("--store", default=None, metavar="URI",
                    help="vector store: faiss (default for a new index), milvus:///path/file.db (Milvus Lite) "
                         "or milvus://HOST:PORT (a Milvus server); default: keep the index's current store. "
                         "Milvus needs the [scale] extra")
    sp.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                    help="read, clean, chunk and embed on Ray (a local cluster, or the cluster at ADDRESS); "
                         "needs the [scale] extra")
    sp.add_argument("--ray-workers", type=int, default=None, metavar="N", help="encoder actors on Ray "
                    "(default: one per 2 CPUs of the cluster)")

    def query_opts(sp, with_k=True):
        index_opt(sp)
        if with_k:
            sp.add_argument("-k", type=int, default=5, help="passages to return (default: 5)")
        sp.add_argument("--mode", choices=("dense", "bm25", "hybrid"), default=None,
                        help="retrieval: dense vectors, BM25 words, or both fused (default: hybrid)")
        sp.add_argument("--json", action="store_true", help="print JSON instead of text")

    sp = sub.add_parser("search", help="show the passages that best match a question",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog='example:\n  rag search "When did deliveries of S-400 launchers begin?" -k 3')
    sp.add_argument("question")
    query_opts(sp)

    sp = sub.add_parser("ask", help="answer a question with a quoted span, or say it is not in the articles",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog='examples:\n  rag ask "What was the S-400 deal reportedly worth?"\n'
                               '  rag ask "Who is Rosoboronexport\'s CEO?" --json\n'
                               '  rag ask --file questions.txt --json')
    sp.add_argument("question", nargs="?", default=None)
    sp.add_argument("--file", default=None, metavar="FILE", help="ask every line of FILE (batched)")
    query_opts(sp, with_k=False)
    sp.add_argument("-k", type=int, default=None,
                    help="passages the reader reads (default: the reader's k, tuned on the gold dev split; 5 when it has none)")
    sp.add_argument("--reader", default=None,
                    help="mpnet (the default where MPNet runs fast: native bf16 or a GPU; fast elsewhere), fused, fast, minilm, features, or a folder with a transformers QA model or a rag adapter")
    sp.add_argument("--threshold", type=float, default=None,
                    help="abstain below this confidence (default: tuned on the gold dev split)")
    sp.add_argument("--context", type=int, default=None, metavar="CHARS",
                    help="also read this many characters of each passage's neighbouring text (e.g. 300; "
                         "default: the reader's, tuned on the gold dev split)")
    sp.add_argument("--windows", choices=("merged", "separate"), default=None,
                    help="with --context: read the widened passages of one article that overlap as one window "
                         "(merged) or each in its own window (separate); default: the reader's")

    sp = sub.add_parser("eval", help="score retrieval and answers on a gold set (or a SQuAD file)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="examples:\n  rag eval                        # evals/gold.jsonl, test split\n"
                               "  rag eval --split dev --modes dense,hybrid --out /tmp/report\n"
                               "  rag eval --squad data.json     # any SQuAD 2.0 file, open retrieval")
    sp.add_argument("gold", nargs="?", default=None, help="gold JSONL (default: evals/gold.jsonl)")
    index_opt(sp)
    sp.add_argument("--docs", default="seeds", help="articles the gold set is about (default: seeds)")
    sp.add_argument("--split", choices=("dev", "test", "all"), default="test")
    sp.add_argument("--modes", default="dense,bm25,hybrid", help="retrieval modes to compare")
    sp.add_argument("--readers", default=None, help="readers to compare, e.g. features,minilm,fast,mpnet,fused")
    sp.add_argument("--squad", default=None, metavar="FILE", help="evaluate on a SQuAD 2.0 JSON(.gz) file")
    sp.add_argument("--limit", type=int, default=None, help="with --squad: at most this many questions")
    sp.add_argument("--out", default="evals/report", metavar="DIR", help="report folder (default: evals/report)")
    sp.add_argument("--compare-store", default=None, metavar="URI",
                    help="also build the index into this vector store (e.g. milvus:///tmp/gold.db) and report "
                         "retrieval on both side by side")

    sp = sub.add_parser("train-reader", help="fine-tune the neural reader on SQuAD-format data",
                        add_help=False)
    sp.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _warn_stale(qa, index: str) -> None:
    reasons = qa.stale()
    if reasons:
        more = f" and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        print(f"warning: the index is out of date ({'; '.join(reasons[:3])}{more}): run `rag index --index {index}`",
              file=sys.stderr)


def cmd_index(a) -> int:
    import rag
    from rag.chunking import ChunkerSettings
    from rag.index.build import console_progress

    docs = a.docs
    if docs is None:
        docs = "seeds"
        try:
            from rag.index.versions import current_version, read_manifest

            docs = read_manifest(current_version(a.index)).get("docs_dir", "seeds")
        except rag.RagError:
            pass
    base = ChunkerSettings()
    chunker = ChunkerSettings(max_tokens=a.chunk_tokens or base.max_tokens,
                              overlap_tokens=base.overlap_tokens if a.overlap_tokens is None else a.overlap_tokens)
    ray = None
    if a.ray:
        from rag.index.distributed import RayOptions

        ray = RayOptions(address=None if a.ray == "local" else a.ray, embed_workers=a.ray_workers)
    info = rag.build_index(docs, a.index, model=a.model, chunker=chunker, force=a.force,
                           progress=console_progress(not a.json), vector_store=a.store, ray=ray)
    for w in info.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if a.json:
        print(json.dumps(info.to_dict(), indent=2))
    elif info.rebuilt:
        print(f"indexed {info.num_documents} articles into {info.num_chunks} chunks at {info.index_dir} "
              f"({info.encoded_chunks} chunks embedded, {info.seconds:.1f} s)")
    else:
        print(f"index at {info.index_dir} is up to date ({info.num_documents} articles, {info.num_chunks} chunks); "
              "nothing was embedded")
    return 0


def cmd_search(a) -> int:
    import rag
    from rag.pipeline import validate_question

    question = validate_question(a.question)  # before loading anything
    qa = rag.load(a.index)
    _warn_stale(qa, a.index)
    hits = qa.retrieve(question, k=a.k, mode=a.mode)
    if a.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no passage matches these words")
    for i, h in enumerate(hits, 1):
        print(f"[{i}] {h.doc_id} [{h.start}:{h.end}]{_page(h)} score {h.score:.3f} - {h.title}")
        print(textwrap.indent(textwrap.fill(h.text, 100), "    "))
    return 0


def _page(p) -> str:
    """' p. 3' for a passage of a PDF page, else nothing."""
    return f" p. {p.page}" if p.page else ""


def format_answer(ans) -> str:
    """The answer as a person reads it in a terminal: span marked in its evidence, sources listed."""
    lines = []
    if ans.text is None:
        why = f": {ans.reason}" if ans.reason else ""
        lines.append(f"Not in these articles{why} (confidence {ans.score:.2f}). Closest passages:")
    else:
        lines.append(f"Answer: {ans.text}   (confidence {ans.score:.2f}){_page(ans)}")
        ev = ans.evidence
        a, b = ans.start - ev.start, ans.end - ev.start
        lines.append(f"Evidence: {ev.text[:a]}[[{ev.text[a:b]}]]{ev.text[b:]}")
        lines.append("Sources:")
    for i, c in enumerate(ans.citations, 1):
        lines.append(f"  [{i}] {c.doc_id} [{c.start}:{c.end}]{_page(c)} {c.title}")
    if ans.alternatives:
        lines.append("Sources disagree:")
        for alt in ans.alternatives:
            where = ", ".join(f"{c.doc_id} [{c.start}:{c.end}]{_page(c)}" for c in alt.citations)
            lines.append(f"  - {alt.text} (confidence {alt.score:.2f}) in {where}")
    return "\n".join(lines)


def cmd_ask(a) -> int:
    import rag
    from rag.pipeline import validate_question

    if (a.question is None) == (a.file is None):
        raise rag.InputError("give either a QUESTION or --file FILE (one question per line)")
    if a.file:
        path = Path(a.file)
        if not path.is_file():
            raise rag.InputError(f"question file {a.file!r} does not exist")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise rag.InputError(f"question file {a.file!r} is not UTF-8 (byte {e.start}): convert it, "
                                 "e.g. iconv -f latin1 -t utf-8") from None
        questions = []
        for n, ln in enumerate(lines, 1):
            if ln.strip():
                try:
                    questions.append(validate_question(ln))
                except rag.InputError as e:
                    raise rag.InputError(f"question file {a.file!r} line {n}: {e}") from None
        if not questions:
            raise rag.InputError(f"question file {a.file!r} holds no questions (one per line)")
    else:
        questions = [validate_question(a.question)]  # before loading anything
    qa = rag.load(a.index, reader=a.reader, **({"mode": a.mode} if a.mode else {}),
                  **({"context": a.context} if a.context is not None else {}),
                  **({"windows": a.windows} if a.windows is not None else {}))
    _warn_stale(qa, a.index)
    if a.threshold is None:
        _note_untuned(qa, a.k)
    answers = qa.ask_many(questions, k=a.k, threshold=a.threshold)
    for ans in answers:
        if a.json:
            print(json.dumps(ans.to_dict(), ensure_ascii=False, indent=None if a.file else 2))
        else:
            if a.file:
                print(f"Q: {ans.question}")
            print(format_answer(ans))
            if a.file:
                print()
    return 0


def _note_untuned(qa, k: int | None) -> None:
    """Say so when the reading setting asked for has no calibration of its own from the reader's
    dev sweep, so its abstention threshold is the one tuned for another setting."""
    from rag.readers.settings import describe_setting, setting_key

    k = k if k is not None else qa.read_k
    if qa.tuning(k).source != "untuned":
        return
    ans = qa.answerer
    tuned = [describe_setting(ans.chosen), *(describe_setting(key) for key in sorted(ans.tunings) if key != ans.chosen)]
    print(f"note: the {ans.reader.name} reader was not calibrated on dev at "
          f"{describe_setting(setting_key(k, ans.context, ans.windows))}, so it abstains with the threshold tuned at "
          f"{tuned[0]}; calibrated settings: {'; '.join(tuned)}. Pass --threshold to choose your own.",
          file=sys.stderr)


def cmd_eval(a) -> int:
    from rag.eval.runner import run_from_cli

    return run_from_cli(a)


def cmd_train_reader(a) -> int:
    from rag.train.neural import main as train_main

    rest = [x for i, x in enumerate(a.args) if not (i == 0 and x == "--")]
    return int(train_main(rest) or 0)


def _one_line(message: str) -> str:
    """Errors print as one line: line breaks (from paths, or a library's message) become spaces."""
    return " ".join(message.split())


def cmd_serve(a) -> int:
    from rag.web.app import serve

    return serve(a)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["train-reader"]:
        # Hand the rest over untouched: argparse.REMAINDER rejects a leading option such as -h.
        argv = ["train-reader", "--", *args[1:]]
    a = _parser().parse_args(argv)
    from rag.errors import RagError

    handlers = {"index": cmd_index, "search": cmd_search, "ask": cmd_ask, "eval": cmd_eval,
                "train-reader": cmd_train_reader, "serve": cmd_serve}
    try:
        return handlers[a.command](a)
    except RagError as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line for the user; the traceback on request
        if os.environ.get("RAG_DEBUG"):
            raise
        print(f"error: unexpected {type(e).__name__}: {_one_line(str(e))} (set RAG_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
