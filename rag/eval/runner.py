"""The evaluation runner behind ``rag eval``: retrieval and answer metrics, a JSON + Markdown report, plots.

Two sources of questions, one pipeline:

* the hand-made gold set (``evals/gold.jsonl``) over the articles in ``--docs`` (``run_gold_eval``);
* any SQuAD 2.0 file (``run_squad_eval``): every paragraph becomes one article file and every
  question is asked with open retrieval over all paragraphs, as DrQA does, and again with its
  own paragraph given.

Both build a list of ``GoldItem`` and an ``EvalPlan`` and call ``evaluate``, which

1. retrieves the top ``RETRIEVAL_K`` passages per question for every retrieval mode (question
   vectors encoded once and shared by the modes) and scores them at document level (relevant =
   the gold ``doc_ids``) and passage level (relevant = the chunks of a gold document whose text,
   normalised, contains a gold answer; taken over the whole index so recall@k is a true recall),
   answerable questions only (``scoring``);
2. asks every question once per (setting, mode, reader) with ``threshold=0.0`` to get the raw
   best answer and its score, and applies the reader's configured threshold itself, so one pass
   gives both the thresholded SQuAD 2.0 scores and the threshold sweep;
3. asks one question per call and times each call, so latency p50/p95 covers every question at
   no extra cost (the reader dominates the time; batching would only save question encoding);
4. writes ``report.json``, ``report.md`` and three plots to the output folder (``report``, ``plots``).

A *setting* is how a question reaches the reader (``plan``): ``open`` (normal retrieval over the
whole index; the gold set uses only this one) and ``given_paragraph`` (the reader reads only the
question's own document; SQuAD runs add it). Another one is a function with the ``Setting``
signature added to ``EvalPlan.settings``: every metric, table and plot iterates over settings.

tqdm is imported inside the functions that use it.
"""
from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .datasets import (
    DEFAULT_GOLD, GoldItem, load_gold, load_squad, squad_answers_outside_body, subsample, write_squad_docs,
)
from .plan import (
    BATCH, EvalPlan, PLOTS, RETRIEVAL_K, Setting, ask_open, make_given_paragraph, parse_modes, parse_readers,
)
from .report import assemble_report, summary_text, write_report
from .scoring import (
    RetrievalRun, answer_metrics, doc_qrels, first_rank, group_table, kind_table, passage_qrels, question_row,
    retrieval_scores,
)
from ..errors import IndexNotFoundError, InputError
from ..index import build_index
from ..index.build import console_progress
from ..pipeline import QA, load, validate_question
from ..schema import Answer


def build_and_report(docs: Path, index: Path, embedder: Any, progress: bool) -> None:
    """Build or update the index at ``index`` from ``docs`` and say what was done (stderr)."""
    info = build_index(docs, index, embedder=embedder, progress=console_progress(progress))
    for w in info.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"indexed {info.num_documents} articles from {docs} into {info.num_chunks} chunks at {index} "
          f"({info.encoded_chunks} chunks embedded, {info.seconds:.1f} s)", file=sys.stderr)


def ensure_index(index: Path, docs: Path | None, embedder: Any, progress: bool = True) -> None:
    """Build the index from ``docs`` when it is missing, update it when it is stale.

    An index built from another folder than ``docs`` is left alone (a warning if it is stale): the
    gold doc ids are checked against it afterwards.
    """
    try:
        qa = load(index, embedder=embedder)
    except IndexNotFoundError:
        if docs is None:
            raise
        _check_docs(docs)
        print(f"no index at {index}: building it from {docs}", file=sys.stderr)
        build_and_report(docs, index, embedder, progress)
        return
    reasons = qa.stale()
    built_from = qa.index.manifest.get("docs_dir")
    same_docs = docs is not None and built_from and Path(built_from) == docs.resolve()
    if reasons and same_docs:
        print(f"the index at {index} is out of date ({'; '.join(reasons[:3])}): updating it from {docs}",
              file=sys.stderr)
        build_and_report(docs, index, embedder, progress)
    elif reasons:
        print(f"warning: the index at {index} is out of date ({'; '.join(reasons[:3])}); it was built from "
              f"{built_from}, not {docs}, so it is not rebuilt", file=sys.stderr)


def _check_docs(docs: Path) -> None:
    if not docs.is_dir():
        raise InputError(f"docs folder {str(docs)!r} does not exist: pass --docs, the folder of articles the "
                         "gold set is about")


def check_gold_docs(qa: QA, items: Sequence[GoldItem]) -> None:
    """Raise when gold doc ids are missing from the index (it was built from other articles)."""
    known = set(qa.index.documents)
    missing = sorted({d for it in items for d in it.doc_ids} - known)
    if missing:
        raise InputError(f"{len(missing)} article(s) of the gold set are not in the index at {qa.index_dir} "
                         f"(e.g. {missing[:3]}; it was built from {qa.index.manifest.get('docs_dir')}): pass "
                         "--index for an index of the gold set's articles, or --docs to build one")


def load_readers(index: Path, readers: Sequence[str | None], embedder: Any,
                 warm_up_question: str) -> dict[str, QA]:
    """One QA per reader, keyed by reader name, each warmed up with one ask (models load here)."""
    out: dict[str, QA] = {}
    for spec in readers:
        qa = load(index, reader=spec, embedder=embedder)
        try:
            qa.ask_many([warm_up_question], threshold=0.0)
        except (OSError, ImportError) as e:
            raise InputError(f"reader {spec!r} could not be loaded ({type(e).__name__}: {e})") from e
        name = qa.answerer.reader.name
        out[name if name not in out else str(spec)] = qa
    return out


class Progress:
    """One tqdm bar on stderr counting questions processed across all stages (or nothing)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="eval", unit="q", file=sys.stderr, dynamic_ncols=True)

    def stage(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description(text)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _batches(seq: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def run_retrieval(qa: QA, items: Sequence[GoldItem], modes: Sequence[str], bar: Progress,
                  k: int = RETRIEVAL_K) -> dict[str, RetrievalRun]:
    """Top-``k`` passages per question for every mode; question vectors are encoded once for all modes."""
    import numpy as np

    questions = [validate_question(it.question) for it in items]
    qvecs = None
    if any(m != "bm25" for m in modes):
        bar.stage("encoding questions")
        parts = []
        for batch in _batches(questions):
            parts.append(qa.retriever.encode(list(batch)))
            bar.update(len(batch))
        qvecs = np.concatenate(parts)
    runs = {}
    for mode in modes:
        bar.stage(f"retrieval {mode}")
        chunks: dict[str, list[str]] = {}
        docs: dict[str, list[str]] = {}
        for start in range(0, len(items), BATCH):
            batch = questions[start:start + BATCH]
            vecs = None if qvecs is None else qvecs[start:start + BATCH]
            for it, hits in zip(items[start:start + BATCH], qa.retriever.search_many(batch, k, mode, vecs)):
                chunks[it.id] = [h.chunk_id or f"{h.doc_id}@{h.start}" for h in hits]
                docs[it.id] = list(dict.fromkeys(h.doc_id for h in hits))
            bar.update(len(batch))
        runs[mode] = RetrievalRun(mode, chunks, docs)
    return runs


def run_answers(setting: Setting, qa: QA, items: Sequence[GoldItem], mode: str,
                bar: Progress) -> tuple[list[Answer], list[float]]:
    """Raw answers, asked one question per call, and the wall seconds of each call."""
    answers: list[Answer] = []
    seconds: list[float] = []
    for it in items:
        t0 = time.perf_counter()
        answers.extend(setting(qa, [it.question], mode))
        seconds.append(time.perf_counter() - t0)
        bar.update(1)
    return answers, seconds


def _progress_total(plan: EvalPlan, n_readers: int) -> int:
    n = len(plan.items)
    encode = n if any(m != "bm25" for m in plan.modes) else 0
    return encode + n * len(plan.modes) + len(plan.settings) * len(plan.modes) * n_readers * n


def evaluate(plan: EvalPlan, index: Path, embedder: Any = None, progress: bool = True) -> dict[str, Any]:
    """Run retrieval and answer evaluation for ``plan`` on the index at ``index``; the report dict."""
    qas = load_readers(index, plan.readers, embedder, plan.items[0].question) if plan.readers else {}
    first = next(iter(qas.values())) if qas else load(index, embedder=embedder)
    bar = Progress(_progress_total(plan, len(qas)), progress)
    try:
        runs = run_retrieval(first, plan.items, plan.modes, bar)
        docs_rel, passages_rel = doc_qrels(plan.items), passage_qrels(plan.items, first.index.chunks)
        retrieval = {m: retrieval_scores(run, docs_rel, passages_rel) for m, run in runs.items()}
        configs, rows = [], []
        for setting, fn in plan.settings.items():
            for mode in plan.modes:
                for reader, qa in qas.items():
                    cfg, cfg_rows = evaluate_config(plan, fn, qa, {"setting": setting, "mode": mode, "reader": reader},
                                                    runs[mode], docs_rel, passages_rel, bar)
                    configs.append(cfg)
                    rows.extend(cfg_rows)
    finally:
        bar.close()
    return assemble_report(plan, first, qas, retrieval, configs, rows)


def evaluate_config(plan: EvalPlan, setting: Setting, qa: QA, config: dict[str, str], run: RetrievalRun,
                    docs_rel: dict[str, set[str]], passages_rel: dict[str, set[str]],
                    bar: Progress) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Answers, latency, per-question rows and metrics for one (setting, mode, reader)."""
    mode = config["mode"]
    bar.stage(f"answers {config['setting']}/{mode}/{config['reader']}")
    answers, latencies = run_answers(setting, qa, plan.items, mode, bar)
    threshold = float(qa.tuning().threshold)
    rows = []
    for it, ans in zip(plan.items, answers):
        ranks = {"doc_rank": first_rank(run.docs[it.id], docs_rel.get(it.id, set())),
                 "passage_rank": first_rank(run.chunks[it.id], passages_rel.get(it.id, set())),
                 "retrieved_doc_ids": run.docs[it.id]}
        rows.append(question_row(it, ans, threshold, config, ranks))
    metrics = answer_metrics(rows, threshold, latencies)
    cfg = {**config, **metrics, "by_type": group_table(rows, "type"), "by_split": group_table(rows, "split"),
           "by_paraphrase": group_table(rows, "paraphrase"), "by_unanswerable_kind": kind_table(rows)}
    return cfg, rows


def run_gold_eval(gold: Path, index: Path, docs: Path | None, out: Path, *, split: str = "test",
                  modes: Sequence[str] = ("dense", "bm25", "hybrid"), readers: Sequence[str | None] = (None,),
                  limit: int | None = None, embedder: Any = None, progress: bool = True,
                  compare_store: str | None = None) -> dict[str, Any]:
    """Evaluate on a gold JSONL file; builds/updates the index from ``docs`` first when needed.

    ``compare_store`` (a ``--store`` URI, e.g. ``milvus:///tmp/gold.db``): also build the same
    index into that vector store (``OUT/index-compare``) and report retrieval on both, side by side.
    """
    items = subsample(load_gold(gold, split), limit)
    _prepare_out(out)
    embedder = embedder or _default_embedder()
    ensure_index(index, docs, embedder, progress)
    check_gold_docs(load(index, embedder=embedder), items)
    plan = EvalPlan("gold", items, tuple(modes), tuple(readers),
                    info={"gold": str(gold), "split": split, "limit": limit, "docs": str(docs) if docs else None})
    report = evaluate(plan, index, embedder, progress)
    if compare_store:
        report["store_comparison"] = compare_stores(plan, index, compare_store, out / "index-compare", embedder,
                                                    progress)
    write_report(report, out)
    return report


def compare_stores(plan: EvalPlan, index: Path, uri: str, other_index: Path, embedder: Any,
                   progress: bool) -> dict[str, Any]:
    """Retrieval on the index and on a copy of it in another vector store, with ranking agreement."""
    from ..stores import store_uri

    base = load(index, embedder=embedder)
    docs = Path(base.index.manifest["docs_dir"])
    info = build_index(docs, other_index, embedder=embedder, vector_store=uri, progress=console_progress(progress))
    other = load(other_index, embedder=embedder)
    bar = Progress(2 * len(plan.items) * (1 + len(plan.modes)), progress)
    try:
        runs_a = run_retrieval(base, plan.items, plan.modes, bar)
        runs_b = run_retrieval(other, plan.items, plan.modes, bar)
    finally:
        bar.close()
    docs_rel, passages_rel = doc_qrels(plan.items), passage_qrels(plan.items, base.index.chunks)
    out: dict[str, Any] = {"stores": [store_uri(base.index.manifest), store_uri(other.index.manifest)],
                           "index": [str(index), str(other_index)], "built": info.rebuilt, "modes": {}}
    for m in plan.modes:
        same = sum(runs_a[m].chunks[q] == runs_b[m].chunks[q] for q in runs_a[m].chunks)
        out["modes"][m] = {"a": retrieval_scores(runs_a[m], docs_rel, passages_rel),
                           "b": retrieval_scores(runs_b[m], docs_rel, passages_rel),
                           "identical_top10": same / max(1, len(runs_a[m].chunks))}
    return out


def run_squad_eval(squad_file: Path, out: Path, *, index: Path | None = None,
                   modes: Sequence[str] = ("dense", "bm25", "hybrid"), readers: Sequence[str | None] = (None,),
                   limit: int | None = None, embedder: Any = None, progress: bool = True) -> dict[str, Any]:
    """Evaluate on a SQuAD 2.0 file with open retrieval over all its paragraphs (temp index unless given)."""
    squad = load_squad(squad_file)
    items = subsample(squad.items, limit)
    _prepare_out(out)
    embedder = embedder or _default_embedder()
    warnings = list(squad.warnings)
    lost = squad_answers_outside_body(squad)
    if lost:
        warnings.append(f"{len(lost)} question(s) lost their answer to the article cleaner (e.g. {lost[:3]})")
    with tempfile.TemporaryDirectory(prefix="rag-squad-") as tmp:
        docs = Path(tmp) / "docs"
        write_squad_docs(squad.paragraphs, docs)
        index_dir = index or Path(tmp) / "index"
        print(f"indexing {len(squad.paragraphs)} paragraphs of {squad_file} ...", file=sys.stderr)
        build_and_report(docs, index_dir, embedder, progress)
        plan = EvalPlan("squad", items, tuple(modes), tuple(readers), warnings=warnings,
                        settings={"open": ask_open, "given_paragraph": make_given_paragraph(items)},
                        info={"squad": str(squad_file), "split": "squad", "limit": limit,
                              "paragraphs": len(squad.paragraphs), "questions_in_file": len(squad.items)})
        report = evaluate(plan, index_dir, embedder, progress)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    write_report(report, out)
    return report


def _default_embedder() -> Any:
    from ..embedding import Embedder

    return Embedder()


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)


def run_from_cli(a: Any) -> int:
    """``rag eval``: the argparse Namespace in, an exit code out (bad input raises InputError)."""
    modes, readers, out = parse_modes(a.modes), parse_readers(a.readers), Path(a.out)
    if a.squad and a.gold:
        raise InputError("give either a GOLD file or --squad FILE, not both")
    if a.squad:
        index = None if a.index == "index" else Path(a.index)  # never overwrite the default seeds index
        report = run_squad_eval(Path(a.squad), out, index=index, modes=modes, readers=readers, limit=a.limit)
    else:
        report = run_gold_eval(Path(a.gold) if a.gold else DEFAULT_GOLD, Path(a.index), Path(a.docs), out,
                               split=a.split, modes=modes, readers=readers, limit=a.limit,
                               compare_store=getattr(a, "compare_store", None))
    print(summary_text(report))
    plots = PLOTS if report["answers"] else PLOTS[:1]
    print(f"report: {out / 'report.md'} (and report.json, {', '.join(plots)})")
    return 0
