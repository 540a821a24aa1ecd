"""The evaluation runner behind ``rag eval``: retrieval and answer metrics, a JSON + Markdown report, plots.

Two sources of questions, one pipeline:

* the hand-made gold set (``evals/gold.jsonl``) over the articles in ``--docs`` (``run_gold_eval``);
* any SQuAD 2.0 file (``run_squad_eval``): every paragraph becomes one article file and every
  question is asked with open retrieval over all paragraphs, as DrQA does.

Both build a list of ``GoldItem`` and an ``EvalPlan`` and call ``evaluate``, which

1. retrieves the top ``RETRIEVAL_K`` passages per question for every retrieval mode (question
   vectors encoded once and shared by the modes) and scores them at document level (relevant =
   the gold ``doc_ids``) and passage level (relevant = the chunks of a gold document whose text,
   normalised, contains a gold answer; taken over the whole index so recall@k is a true recall),
   answerable questions only;
2. asks every question once per (setting, mode, reader) with ``threshold=0.0`` to get the raw
   best answer and its score, and applies the reader's configured threshold itself, so one pass
   gives both the thresholded SQuAD 2.0 scores and the threshold sweep;
3. asks one question per call and times each call, so latency p50/p95 covers every question at
   no extra cost (the reader dominates the time; batching would only save question encoding);
4. writes ``report.json``, ``report.md`` and three plots to the output folder.

A *setting* is how a question reaches the reader. Only ``open`` (normal retrieval over the whole
index) exists now; another one (e.g. SQuAD's ``given_paragraph``) is a function with the
``Setting`` signature added to ``EvalPlan.settings``: every metric, table and plot iterates over
settings already.

matplotlib and tqdm are imported inside the functions that use them.
"""
from __future__ import annotations

import gzip
import json
import math
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import IndexNotFoundError, InputError
from .evaluation import (
    abstention_scores,
    best_thresholds,
    calibration_bins,
    citation_accurate,
    evidence_contains,
    exact_match,
    expected_calibration_error,
    f1_score,
    latency_summary,
    max_over_golds,
    retrieval_metrics,
    squad_v2_scores,
    threshold_curve,
)
from .indexing import build_index
from .pipeline import DEFAULT_MODE, QA, load, validate_question
from .retrieval import check_mode
from .schema import Answer, Chunk

DEFAULT_GOLD = Path("evals/gold.jsonl")
RETRIEVAL_K = 10
RETRIEVAL_KS = tuple(range(1, RETRIEVAL_K + 1))
TABLE_KS = (1, 3, 5, 10)
THRESHOLDS = tuple(round(i * 0.02, 2) for i in range(51))  # 0.00, 0.02, ..., 1.00
CALIBRATION_BINS = 10
CORRECT_F1 = 0.5  # an answer is "correct" for calibration when its F1 >= 0.5 (EM = 1 implies F1 = 1)
BATCH = 32
WORST = 15
PLOTS = ("recall_at_k.png", "threshold.png", "reliability.png")
CORRECT_DEFINITION = f"F1 >= {CORRECT_F1} against the best-matching gold answer (an exact match counts too)"


LATENCY_METHOD = ("wall time of one ask_many([question], threshold=0.0) call per question (retrieval, "
                  "question encoding and reading included), over every question, after one warm-up ask that "
                  "loads the models")


Setting = Callable[[QA, list[str], str], list[Answer]]  # (qa, questions, mode) -> raw answers (threshold 0)


# --------------------------------------------------------------------------------------------
# Questions
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GoldItem:
    """One question with its gold answers (``()`` = unanswerable) and the articles that state them."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...]
    answerable: bool
    type: str = "other"
    split: str = ""
    unanswerable_kind: str | None = None
    paraphrase: bool = False


def load_gold(path: Path, split: str = "all") -> list[GoldItem]:
    """The gold questions of ``split`` ("dev", "test" or "all") from a gold JSONL file."""
    if not path.is_file():
        raise InputError(f"gold file {str(path)!r} does not exist: pass a gold JSONL file "
                         f"(default {DEFAULT_GOLD}) or --squad FILE.json")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            items.append(_gold_item(line, path, n))
    _check_unique(items, path)
    chosen = [it for it in items if split == "all" or it.split == split]
    if not chosen:
        raise InputError(f"{path} holds no questions of the {split!r} split ({len(items)} questions in all): "
                         "use --split dev, test or all")
    return chosen


def _gold_item(line: str, path: Path, n: int) -> GoldItem:
    try:
        r = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{path} line {n} is not valid JSON ({e.msg})") from None
    missing = [k for k in ("id", "question", "answers") if k not in r] if isinstance(r, dict) else ["all"]
    if missing:
        raise InputError(f"{path} line {n} is not a question object with id, question and answers "
                         f"(missing: {', '.join(missing)})")
    answers = tuple(str(a) for a in r["answers"])
    answerable = bool(r.get("answerable", bool(answers)))
    if answerable and not answers:
        raise InputError(f"{path} line {n} ({r['id']}) is marked answerable but has no answers")
    return GoldItem(id=str(r["id"]), question=str(r["question"]), answers=answers if answerable else (),
                    doc_ids=tuple(r.get("doc_ids", ())), answerable=answerable, type=str(r.get("type", "other")),
                    split=str(r.get("split", "")), unanswerable_kind=r.get("unanswerable_kind"),
                    paraphrase=bool(r.get("paraphrase", False)))


def _check_unique(items: Sequence[GoldItem], path: Path) -> None:
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise InputError(f"{path} holds the question id {it.id!r} twice: ids must be unique")
        seen.add(it.id)


def subsample(items: list[GoldItem], limit: int | None, seed: int = 13) -> list[GoldItem]:
    """A fixed random sample of ``limit`` questions (seeded, so reruns match), or all of them.

    Stratified: answerable and unanswerable questions keep their shares (SQuAD files list the
    unanswerable ones apart, so the first N ids would hold none). Returned in sorted id order.
    """
    if limit is None:
        return items
    if limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if limit >= len(items):
        return items
    import random

    rng = random.Random(seed)
    ordered = sorted(items, key=lambda it: it.id)
    has = [it for it in ordered if it.answerable]
    non = [it for it in ordered if not it.answerable]
    n_non = round(limit * len(non) / len(ordered))
    picked = rng.sample(has, min(len(has), limit - n_non)) + rng.sample(non, min(len(non), n_non))
    return sorted(picked, key=lambda it: it.id)


def parse_modes(spec: str | None) -> tuple[str, ...]:
    """``"dense,bm25"`` -> ("dense", "bm25"), each checked, duplicates dropped."""
    names = [m.strip() for m in (spec or "").split(",") if m.strip()]
    if not names:
        raise InputError("--modes is empty: give one or more of dense,bm25,hybrid")
    return tuple(dict.fromkeys(check_mode(m) for m in names))


def parse_readers(spec: str | None) -> tuple[str | None, ...]:
    """``None`` -> (None,) (the default reader); ``"features,neural"`` -> ("features", "neural");
    ``"none"`` -> () (retrieval only: no reader is loaded and no question is answered)."""
    if spec is None:
        return (None,)
    if spec.strip().lower() == "none":
        return ()
    names = tuple(dict.fromkeys(r.strip() for r in spec.split(",") if r.strip()))
    if not names:
        raise InputError("--readers is empty: give e.g. features,minilm,fast,mpnet,fused")
    return names


# --------------------------------------------------------------------------------------------
# SQuAD 2.0 files
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SquadParagraph:
    """One SQuAD paragraph written as an article: a synthetic title line, then the context verbatim."""

    doc_id: str  # "<title-slug>/<para-index>", the file path without .txt
    title: str
    index: int
    context: str

    @property
    def header(self) -> str:
        # The article cleaner takes the first line of >= 3 words as the title and keeps it out of the
        # body, so the context must not be the first line.
        return f"Paragraph {self.index} of {self.title}"

    @property
    def offset(self) -> int:
        """Where the context starts in the file text (after the header line and its newline)."""
        return len(self.header) + 1

    @property
    def source(self) -> str:
        return f"{self.header}\n{self.context}"


@dataclass
class SquadSet:
    paragraphs: list[SquadParagraph]
    items: list[GoldItem]
    spans: dict[str, list[tuple[int, int]]]  # question id -> answer spans as offsets into the file text
    warnings: list[str] = field(default_factory=list)


def slugify(title: str) -> str:
    slug = re.sub(r"[^0-9a-z]+", "-", title.lower()).strip("-")
    return slug[:60].strip("-") or "untitled"


def read_squad_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"SQuAD file {str(path)!r} does not exist")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as e:
        raise InputError(f"{path} is not a readable SQuAD JSON file ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{path} is not in SQuAD format: expected {{\"data\": [{{\"title\", \"paragraphs\"}}]}}")
    return data


def load_squad(path: Path) -> SquadSet:
    """Paragraphs and questions of a SQuAD 2.0 (or 1.1) file; ``is_impossible`` questions have no answers."""
    data = read_squad_json(path)
    out = SquadSet([], [], {})
    slugs: set[str] = set()
    for n, article in enumerate(data["data"]):
        title = " ".join(str(article.get("title") or f"article {n}").replace("_", " ").split())
        slug = slugify(title)
        while slug in slugs:
            slug += "-x"
        slugs.add(slug)
        for i, para in enumerate(article.get("paragraphs", [])):
            p = SquadParagraph(f"{slug}/{i}", title, i, str(para.get("context", "")))
            out.paragraphs.append(p)
            for qa in para.get("qas", []):
                _add_squad_question(out, p, qa)
    _check_unique(out.items, path)
    if not out.items:
        raise InputError(f"{path} holds no questions")
    return out


def _add_squad_question(out: SquadSet, p: SquadParagraph, qa: dict[str, Any]) -> None:
    answers = [a for a in qa.get("answers", []) if str(a.get("text", "")).strip()]
    impossible = bool(qa.get("is_impossible", not answers))
    spans = []
    for a in answers if not impossible else []:
        start = a.get("answer_start")
        text = str(a["text"])
        if isinstance(start, int) and p.context[start:start + len(text)] == text:
            spans.append((p.offset + start, p.offset + start + len(text)))
        else:
            out.warnings.append(f"{qa.get('id')}: answer_start {start} does not point at {text!r}")
    texts = tuple(dict.fromkeys(str(a["text"]) for a in answers)) if not impossible else ()
    out.items.append(GoldItem(id=str(qa["id"]), question=str(qa["question"]), answers=texts, doc_ids=(p.doc_id,),
                              answerable=not impossible, type=p.title, split="squad"))
    out.spans[str(qa["id"])] = spans


def write_squad_docs(paragraphs: Iterable[SquadParagraph], folder: Path) -> int:
    """Write each paragraph as ``<folder>/<title-slug>/<para-index>.txt``; returns the number written."""
    n = 0
    for p in paragraphs:
        path = folder / f"{p.doc_id}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(p.source.encode("utf-8"))  # bytes: no newline translation, offsets stay exact
        n += 1
    return n


def squad_answers_outside_body(squad: SquadSet) -> list[str]:
    """Ids of answerable questions whose every answer span the article cleaner left out of the body."""
    from .documents import parse_article

    segments = {p.doc_id: parse_article(p.source, p.doc_id).segments for p in squad.paragraphs}
    lost = []
    for it in squad.items:
        spans = squad.spans.get(it.id, [])
        segs = segments[it.doc_ids[0]]
        if spans and not any(s <= a and b <= e for a, b in spans for s, e in segs):
            lost.append(it.id)
    return lost


# --------------------------------------------------------------------------------------------
# Index and readers
# --------------------------------------------------------------------------------------------

def _build_progress(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def tell(stage: str, done: int, total: int) -> None:
        if total <= 0:
            print(f"{stage} ...", file=sys.stderr)
            return
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(total=total, desc=stage, file=sys.stderr, leave=False))
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
    return tell


def build_and_report(docs: Path, index: Path, embedder: Any, progress: bool) -> None:
    """Build or update the index at ``index`` from ``docs`` and say what was done (stderr)."""
    info = build_index(docs, index, embedder=embedder, progress=_build_progress(progress))
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


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------------

@dataclass
class RetrievalRun:
    """Ranked chunk ids and the document ranking they imply, per question id, for one mode."""

    mode: str
    chunks: dict[str, list[str]]
    docs: dict[str, list[str]]


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


def doc_qrels(items: Sequence[GoldItem]) -> dict[str, set[str]]:
    """Relevant documents per answerable question: its gold doc ids."""
    return {it.id: set(it.doc_ids) for it in items if it.answerable}


def passage_qrels(items: Sequence[GoldItem], chunks: Sequence[Chunk]) -> dict[str, set[str]]:
    """Relevant chunks per answerable question: chunks of a gold doc whose normalised text holds a gold answer."""
    by_doc: dict[str, list[Chunk]] = defaultdict(list)
    for c in chunks:
        by_doc[c.doc_id].append(c)
    return {it.id: {c.chunk_id for d in it.doc_ids for c in by_doc.get(d, ()) if evidence_contains(c.text, it.answers)}
            for it in items if it.answerable}


def retrieval_scores(run: RetrievalRun, docs_rel: dict[str, set[str]],
                     passages_rel: dict[str, set[str]]) -> dict[str, dict[str, float]]:
    """Document- and passage-level hit/recall/MRR/nDCG@1..10 for one mode (``retrieval_metrics``)."""
    return {"doc": retrieval_metrics(run.docs, docs_rel, ks=RETRIEVAL_KS),
            "passage": retrieval_metrics(run.chunks, passages_rel, ks=RETRIEVAL_KS)}


def first_rank(ranked: Sequence[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant id, or None when none was retrieved."""
    return next((i for i, x in enumerate(ranked, 1) if x in relevant), None)


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------

def ask_open(qa: QA, questions: list[str], mode: str) -> list[Answer]:
    """The ``open`` setting: retrieval over the whole index, raw best answer (threshold 0)."""
    return qa.ask_many(questions, mode=mode, threshold=0.0)


def make_given_paragraph(items: Sequence[GoldItem]) -> Setting:
    """The ``given_paragraph`` setting: the reader reads only the question's own document.

    For SQuAD files a document is one paragraph, so this is the classic reading-comprehension
    score, separate from retrieval. Uses the reader and the answer logic of the QA object.
    """
    doc_of: dict[str, str] = {}
    for it in items:
        if it.doc_ids:
            doc_of.setdefault(it.question, it.doc_ids[0])

    def given(qa: QA, questions: list[str], mode: str) -> list[Answer]:
        rows_of: dict[str, list[int]] = {}
        for row, c in enumerate(qa.index.chunks):
            rows_of.setdefault(c.doc_id, []).append(row)
        reader = qa.answerer.reader
        out = []
        for q in questions:
            passages = [qa.retriever.passage(r, 1.0) for r in rows_of.get(doc_of.get(q, ""), [])]
            kwargs = {"qvec": qa.retriever.encode([q])[0]} if getattr(reader, "uses_vectors", False) else {}
            result = reader.read(q, passages, **kwargs)
            out.append(qa.answerer.decide(q, passages, result, 0.0))
        return out

    return given


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


def thresholded(answer: Answer, threshold: float) -> str | None:
    """The answer text if its raw score reaches ``threshold``, else None (abstain)."""
    if answer.text is None or raw_score(answer) < threshold:
        return None
    return answer.text


def raw_score(answer: Answer) -> float:
    """The answer's confidence in [0, 1]; 0.0 when the reader found nothing (``text is None``)."""
    return 0.0 if answer.text is None else min(1.0, max(0.0, float(answer.score)))


def question_row(it: GoldItem, ans: Answer, threshold: float, config: dict[str, str],
                 ranks: dict[str, int | None]) -> dict[str, Any]:
    """The per-question record of report.json for one (setting, mode, reader)."""
    pred = thresholded(ans, threshold)
    golds = list(it.answers)
    raw_f1 = max_over_golds(f1_score, ans.text, golds)
    cited = ans.citations[0].text if ans.citations and ans.text is not None else None
    return {
        "id": it.id, "question": it.question, "type": it.type, "split": it.split,
        "answerable": it.answerable, "unanswerable_kind": it.unanswerable_kind, "paraphrase": it.paraphrase,
        **config,
        "prediction": ans.text, "score": raw_score(ans), "thresholded": pred, "gold": golds,
        "gold_doc_ids": list(it.doc_ids),
        "em": max_over_golds(exact_match, pred, golds), "f1": max_over_golds(f1_score, pred, golds),
        "raw_em": max_over_golds(exact_match, ans.text, golds), "raw_f1": raw_f1,
        "correct": bool(ans.text is not None and raw_f1 >= CORRECT_F1),
        "evidence": ans.evidence.text if ans.evidence and ans.text is not None else None,
        "evidence_contains": bool(pred is not None and it.answerable and ans.evidence
                                  and evidence_contains(ans.evidence.text, golds)),
        "evidence_contains_raw": bool(ans.text is not None and it.answerable and ans.evidence
                                      and evidence_contains(ans.evidence.text, golds)),
        "citation_doc_ids": list(dict.fromkeys(c.doc_id for c in ans.citations)) if ans.text is not None else [],
        "citation_accurate": bool(pred is not None and citation_accurate(ans.doc_id, cited, it.doc_ids, golds)),
        **ranks,
    }


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0


def answer_metrics(rows: Sequence[dict[str, Any]], threshold: float,
                   latencies: Sequence[float]) -> dict[str, Any]:
    """Every answer metric of one (setting, mode, reader) from its question rows."""
    golds = {r["id"]: r["gold"] for r in rows}
    raw = {r["id"]: r["prediction"] for r in rows}
    scores = {r["id"]: r["score"] for r in rows}
    has = [r for r in rows if r["answerable"]]
    no = [r for r in rows if not r["answerable"]]
    answered_has = [r for r in has if r["thresholded"] is not None]
    with_pred = [r for r in rows if r["prediction"] is not None]
    cal_scores, cal_correct = [r["score"] for r in with_pred], [float(r["correct"]) for r in with_pred]
    curve = threshold_curve(raw, scores, golds, THRESHOLDS)
    return {
        "threshold": threshold,
        "squad": squad_v2_scores({r["id"]: r["thresholded"] for r in rows}, golds),
        "raw_squad": squad_v2_scores(raw, golds),
        "best_thresholds": best_thresholds(raw, scores, golds),
        "threshold_curve": curve,
        "evidence_contains": _mean(float(r["evidence_contains"]) for r in has),
        "evidence_contains_raw": _mean(float(r["evidence_contains_raw"]) for r in has),
        "citation_accuracy": _mean(float(r["citation_accurate"]) for r in answered_has),
        "citation_answered": len(answered_has),
        "abstention": abstention_scores({r["id"]: r["thresholded"] is None for r in rows},
                                        {r["id"]: r["answerable"] for r in rows}),
        "noans_acc": _mean(float(r["thresholded"] is None) for r in no),
        "coverage": _mean(float(r["thresholded"] is not None) for r in rows),
        "latency": latency_summary(latencies),
        "calibration": {"bins": calibration_bins(cal_scores, cal_correct, CALIBRATION_BINS),
                        "ece": expected_calibration_error(cal_scores, cal_correct, CALIBRATION_BINS),
                        "n": len(with_pred), "correct": CORRECT_DEFINITION},
    }


def group_table(rows: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """EM, F1 (thresholded), evidence containment and counts per value of ``row[key]``."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[str(r[key])].append(r)
    out = {}
    for name in sorted(groups):
        g = groups[name]
        has = [r for r in g if r["answerable"]]
        no = [r for r in g if not r["answerable"]]
        out[name] = {"count": len(g), "answerable": len(has), "em": _mean(r["em"] for r in g),
                     "f1": _mean(r["f1"] for r in g), "hasans_f1": _mean(r["f1"] for r in has),
                     "evidence_contains": _mean(float(r["evidence_contains"]) for r in has),
                     "noans_acc": _mean(float(r["thresholded"] is None) for r in no) if no else None}
    return out


def kind_table(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """NoAns accuracy (fraction abstained on) per unanswerable kind."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if not r["answerable"]:
            groups[r["unanswerable_kind"] or "unspecified"].append(r)
    return {k: {"count": len(g), "noans_acc": _mean(float(r["thresholded"] is None) for r in g),
                "answered": sum(r["thresholded"] is not None for r in g)} for k, g in sorted(groups.items())}


def worst_failures(rows: Sequence[dict[str, Any]], n: int = WORST) -> list[dict[str, Any]]:
    """The ``n`` worst questions: lowest F1 first, the most confident mistakes first among equals."""
    wrong = [r for r in rows if r["f1"] < 1.0]
    return sorted(wrong, key=lambda r: (r["f1"], -r["score"], r["id"]))[:n]


# --------------------------------------------------------------------------------------------
# The whole evaluation
# --------------------------------------------------------------------------------------------

@dataclass
class EvalPlan:
    """What to evaluate: questions, modes, readers, settings, and what to record about them."""

    name: str  # "gold" or "squad"
    items: list[GoldItem]
    modes: tuple[str, ...]
    readers: tuple[str | None, ...] = (None,)
    settings: dict[str, Setting] = field(default_factory=lambda: {"open": ask_open})
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def primary_mode(modes: Sequence[str]) -> str:
    return DEFAULT_MODE if DEFAULT_MODE in modes else modes[0]


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
    threshold = float(qa.answerer.threshold)
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


def headline(retrieval: dict[str, Any], mode: str, cfg: dict[str, Any] | None) -> dict[str, float]:
    """The numbers floors are checked against: retrieval of the primary mode, answers of the primary
    configuration (no answer keys when no reader ran)."""
    r = retrieval[mode]
    out = {f"{lvl}_{m}@{k}": r[lvl][f"{m}@{k}"] for lvl in ("doc", "passage") for m in ("hit", "recall")
           for k in TABLE_KS}
    out.update({f"{lvl}_mrr@10": r[lvl]["mrr@10"] for lvl in ("doc", "passage")})
    out.update({f"{lvl}_ndcg@10": r[lvl]["ndcg@10"] for lvl in ("doc", "passage")})
    if cfg is None:
        return out
    s = cfg["squad"]
    out.update({"exact": s["exact"], "f1": s["f1"], "hasans_exact": s["HasAns_exact"], "hasans_f1": s["HasAns_f1"],
                "noans_acc": cfg["noans_acc"], "evidence_contains": cfg["evidence_contains"],
                "citation_accuracy": cfg["citation_accuracy"], "best_f1": cfg["best_thresholds"]["best_f1"],
                "ece": cfg["calibration"]["ece"], "p50_ms": cfg["latency"]["p50_ms"]})
    return out


def assemble_report(plan: EvalPlan, qa: QA, qas: dict[str, QA], retrieval: dict[str, Any],
                    configs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    mode = primary_mode(plan.modes)
    primary = next((c for c in configs if c["mode"] == mode), None)
    rows_primary = [r for r in rows if primary is not None and _same(r, primary)]
    m = qa.index.manifest
    settings = {
        **plan.info, "source": plan.name, "modes": list(plan.modes), "readers": list(qas),
        "settings": list(plan.settings), "thresholds": {name: float(q.answerer.threshold) for name, q in qas.items()},
        "questions": len(plan.items), "answerable": sum(it.answerable for it in plan.items),
        "unanswerable": sum(not it.answerable for it in plan.items), "retrieval_k": RETRIEVAL_K,
        "reader_k": qa.k,
        "primary": {"setting": next(iter(plan.settings)), "mode": mode, "reader": primary and primary["reader"]},
        "correct_definition": CORRECT_DEFINITION,
        "latency_method": LATENCY_METHOD,
        "passage_relevance": "chunks of a gold document whose normalised text contains a gold answer "
                             "(over the whole index); answerable questions only",
        "index": {"dir": str(qa.index_dir), "model": m.get("model"), "docs_dir": m.get("docs_dir"),
                  "chunker": m.get("chunker"), "documents": m.get("num_documents"), "chunks": m.get("num_chunks")},
    }
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": settings,
            "headline": headline(retrieval, mode, primary), "retrieval": retrieval, "answers": configs,
            "worst_failures": [r["id"] for r in worst_failures(rows_primary)],
            "warnings": plan.warnings, "questions": rows}


def _same(row: dict[str, Any], cfg: dict[str, Any]) -> bool:
    return all(row[k] == cfg[k] for k in ("setting", "mode", "reader"))


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------

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
    from .stores import store_uri

    base = load(index, embedder=embedder)
    docs = Path(base.index.manifest["docs_dir"])
    info = build_index(docs, other_index, embedder=embedder, vector_store=uri, progress=_build_progress(progress))
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
    from .embedding import Embedder

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


# --------------------------------------------------------------------------------------------
# Writing: JSON
# --------------------------------------------------------------------------------------------

def json_safe(value: Any) -> Any:
    """``value`` with inf/NaN floats replaced by None, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(json_safe(report), indent=1, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")


def write_report(report: dict[str, Any], out: Path) -> None:
    """report.json, report.md and the three plots into ``out`` (only recall@k when no reader ran)."""
    write_json(report, out / "report.json")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    plot_recall_at_k(report, out / "recall_at_k.png")
    for name, plot in (("threshold.png", plot_threshold), ("reliability.png", plot_reliability)):
        if report["answers"]:
            plot(report, out / name)
        else:
            (out / name).unlink(missing_ok=True)  # never leave a plot of an earlier run beside this report


# --------------------------------------------------------------------------------------------
# Writing: Markdown
# --------------------------------------------------------------------------------------------

def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _cell(text: Any, limit: int = 120) -> str:
    s = "–" if text is None else " ".join(str(text).split())
    s = s if len(s) <= limit else s[:limit - 1] + "…"
    return s.replace("|", "\\|")


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) if isinstance(c, str) else _f(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def config_label(cfg: dict[str, Any]) -> str:
    base = f"{cfg['mode']} / {cfg['reader']}"
    return base if cfg["setting"] == "open" else f"{cfg['setting']}: {base}"


def md_header(report: dict[str, Any]) -> str:
    s = report["settings"]
    src = s.get("gold") or s.get("squad")
    ix = s["index"]
    p = s["primary"]
    return "\n".join([
        "# Evaluation report", "",
        f"- created: {report['created']}",
        f"- questions: {src}, split `{s.get('split')}`: {s['questions']} ({s['answerable']} answerable, "
        f"{s['unanswerable']} unanswerable)" + (f", limited to {s['limit']}" if s.get("limit") else ""),
        f"- index: `{ix['dir']}` ({ix['documents']} articles, {ix['chunks']} chunks, model {ix['model']})",
        f"- retrieval modes: {', '.join(s['modes'])}; readers (threshold): "
        + (", ".join(f"{r} ({_f(t, 2)})" for r, t in s["thresholds"].items()) or "none (retrieval only)"),
        f"- retrieval depth {s['retrieval_k']}; the reader reads the top {s['reader_k']}; "
        f"primary configuration: {p['mode']} / {p['reader']}",
        f"- passage relevance: {s['passage_relevance']}",
        f"- correct (calibration): {s['correct_definition']}",
        f"- latency: {s['latency_method']}",
    ] + [f"- warning: {w}" for w in report.get("warnings", [])])


def md_headline(report: dict[str, Any]) -> str:
    h = report["headline"]
    keys = [k for k in ("doc_hit@5", "passage_hit@5", "passage_mrr@10", "exact", "f1", "hasans_f1", "noans_acc",
                        "evidence_contains", "citation_accuracy", "best_f1", "ece", "p50_ms") if k in h]
    return "## Headline (primary configuration)\n\n" + md_table(keys, [[h[k] for k in keys]])


def md_retrieval(report: dict[str, Any]) -> str:
    parts = ["## Retrieval per mode", "",
             "Answerable questions only; hit@k = a relevant item in the top k; k counts distinct documents at "
             "document level and chunks at passage level."]
    head = ["mode", "queries"] + [f"hit@{k}" for k in TABLE_KS] + ["recall@5", "recall@10", "MRR@10", "nDCG@10"]
    for lvl, name in (("doc", "Document level (relevant = gold doc_ids)"),
                      ("passage", "Passage level (relevant = chunks of a gold doc holding a gold answer)")):
        rows = [[m, r[lvl]["queries"]] + [r[lvl][f"hit@{k}"] for k in TABLE_KS]
                + [r[lvl]["recall@5"], r[lvl]["recall@10"], r[lvl]["mrr@10"], r[lvl]["ndcg@10"]]
                for m, r in report["retrieval"].items()]
        parts += ["", f"### {name}", "", md_table(head, rows)]
    return "\n".join(parts)


def md_answers(report: dict[str, Any]) -> str:
    head = ["mode / reader", "threshold", "EM", "F1", "HasAns EM", "HasAns F1", "NoAns acc", "coverage",
            "evidence", "citation acc", "abstain P", "abstain R", "ECE", "p50 ms", "p95 ms"]
    rows = [[config_label(c), c["threshold"], c["squad"]["exact"], c["squad"]["f1"], c["squad"]["HasAns_exact"],
             c["squad"]["HasAns_f1"], c["noans_acc"], c["coverage"], c["evidence_contains"], c["citation_accuracy"],
             c["abstention"]["precision"], c["abstention"]["recall"], c["calibration"]["ece"],
             _f(c["latency"]["p50_ms"], 0), _f(c["latency"]["p95_ms"], 0)] for c in report["answers"]]
    return "\n".join([
        "## Answers per mode and reader", "",
        "SQuAD 2.0 scores with each reader's configured threshold. evidence = answerable questions whose "
        "answer's evidence sentence holds a gold answer (an abstention counts as a miss); citation acc = "
        "answered answerable questions whose cited passage is in a gold article and holds a gold answer; "
        "abstain P/R = precision/recall of abstaining, unanswerable being the positive class.", "",
        md_table(head, rows)])


def md_sweep(report: dict[str, Any]) -> str:
    head = ["mode / reader", "configured", "F1 there", "best F1", "at threshold", "best EM", "at threshold",
            "F1 without threshold"]
    rows = []
    for c in report["answers"]:
        b = c["best_thresholds"]
        rows.append([config_label(c), c["threshold"], c["squad"]["f1"], b["best_f1"], b["best_f1_thresh"],
                     b["best_exact"], b["best_exact_thresh"], c["raw_squad"]["f1"]])
    return ("## Threshold sweep\n\nThe best attainable F1 and EM when abstaining below a threshold on the answer "
            "score (`best_thresholds`; a threshold of – means abstaining on everything is best). For "
            "reporting only: tune thresholds on the dev split.\n\n" + md_table(head, rows))


def md_groups(report: dict[str, Any], cfg: dict[str, Any]) -> str:
    head = ["{}", "count", "answerable", "EM", "F1", "HasAns F1", "evidence", "NoAns acc"]
    parts = []
    for key, title in (("by_type", "question type"), ("by_split", "split")):
        rows = [[name, g["count"], g["answerable"], g["em"], g["f1"], g["hasans_f1"], g["evidence_contains"],
                 g["noans_acc"]] for name, g in cfg[key].items()]
        parts += [f"## Per {title} ({config_label(cfg)})", "", md_table([head[0].format(title)] + head[1:], rows), ""]
    kinds = [[k, g["count"], g["answered"], g["noans_acc"]] for k, g in cfg["by_unanswerable_kind"].items()]
    parts += [f"## Unanswerable questions per kind ({config_label(cfg)})", "",
              md_table(["kind", "count", "answered anyway", "NoAns acc"], kinds)]
    return "\n".join(parts)


def md_failures(report: dict[str, Any], cfg: dict[str, Any]) -> str:
    by_id = {r["id"]: r for r in report["questions"] if _same(r, cfg)}
    rows = []
    for n, qid in enumerate(report["worst_failures"], 1):
        r = by_id[qid]
        shown = r["thresholded"] if r["thresholded"] is not None else (
            f"(abstained; best guess: {r['prediction']})" if r["prediction"] else "(abstained)")
        gold = " / ".join(r["gold"]) if r["gold"] else "(unanswerable)"
        rows.append([str(n), r["id"], r["type"], _cell(r["question"], 100), _cell(shown, 100), r["score"],
                     _cell(gold, 80), r["f1"]])
    return (f"## Worst failures ({config_label(cfg)})\n\nLowest F1 first; among equals the most confident "
            "first.\n\n" + md_table(["#", "id", "type", "question", "prediction", "score", "gold", "F1"], rows))


def render_markdown(report: dict[str, Any]) -> str:
    p = report["settings"]["primary"]
    cfg = next((c for c in report["answers"] if _same(c, p)), None)
    sections = [md_header(report), md_headline(report), md_retrieval(report)]
    if report.get("store_comparison"):
        sections.append(md_stores(report))
    if cfg is None:
        sections += ["## Answers\n\nNo reader ran (`--readers none`): retrieval only.",
                     "## Plots\n\n![recall@k](recall_at_k.png)"]
    else:
        sections += [md_answers(report), md_sweep(report), md_groups(report, cfg), md_failures(report, cfg),
                     "## Plots\n\n![recall@k](recall_at_k.png)\n\n![threshold](threshold.png)\n\n"
                     "![reliability](reliability.png)"]
    return "\n\n".join(sections) + "\n"


# --------------------------------------------------------------------------------------------
# Terminal summary
# --------------------------------------------------------------------------------------------

def _store_rows(report: dict[str, Any]) -> list[list[Any]]:
    sc = report.get("store_comparison")
    if not sc:
        return []
    rows = []
    for m, r in sc["modes"].items():
        for key, uri in (("a", sc["stores"][0]), ("b", sc["stores"][1])):
            d, p = r[key]["doc"], r[key]["passage"]
            rows.append([m, uri, d["hit@1"], d["hit@5"], d["mrr@10"], p["hit@1"], p["hit@5"], p["mrr@10"],
                         r["identical_top10"]])
    return rows


def _store_lines(report: dict[str, Any]) -> list[str]:
    rows = _store_rows(report)
    if not rows:
        return []
    out = ["", f"{'by store':<8} {'store':<34}{'doc hit@1':>10}{'hit@5':>7}{'MRR':>7}{'psg hit@1':>10}{'hit@5':>7}"
               f"{'MRR':>7}{'same top10':>11}"]
    for r in rows:
        uri = r[1] if len(r[1]) <= 33 else "..." + r[1][-30:]
        out.append(f"{r[0]:<8} {uri:<34}" + "".join(f"{x:>{w}.3f}" for x, w in zip(r[2:], (10, 7, 7, 10, 7, 7, 11))))
    return out


def md_stores(report: dict[str, Any]) -> str:
    rows = _store_rows(report)
    return ("## Retrieval by vector store\n\nThe same index built into each store; `same top10` is the fraction "
            "of questions whose ten ranked chunks are identical in both.\n\n"
            + md_table(["mode", "store", "doc hit@1", "doc hit@5", "doc MRR@10", "passage hit@1", "passage hit@5",
                        "passage MRR@10", "same top10"], rows))


def summary_text(report: dict[str, Any]) -> str:
    """A short fixed-width table: retrieval per mode, then answers per mode and reader."""
    s = report["settings"]
    lines = [f"{s['source']} eval, split {s.get('split')}: {s['questions']} questions "
             f"({s['answerable']} answerable, {s['unanswerable']} unanswerable)", "",
             f"{'retrieval':<12}{'doc hit@1':>10}{'hit@5':>8}{'MRR':>8}   {'passage hit@1':>13}{'hit@5':>8}{'MRR':>8}"]
    for m, r in report["retrieval"].items():
        d, p = r["doc"], r["passage"]
        lines.append(f"{m:<12}{d['hit@1']:>10.3f}{d['hit@5']:>8.3f}{d['mrr@10']:>8.3f}   "
                     f"{p['hit@1']:>13.3f}{p['hit@5']:>8.3f}{p['mrr@10']:>8.3f}")
    lines += _store_lines(report)
    if not report["answers"]:
        return "\n".join(lines + ["", "answers: none (retrieval only)"])
    lines += ["", f"{'answers':<22}{'thr':>5}{'EM':>7}{'F1':>7}{'HasF1':>7}{'NoAns':>7}{'evid':>7}{'cite':>7}"
                  f"{'bestF1':>8}{'ECE':>7}{'p50ms':>7}"]
    for c in report["answers"]:
        q = c["squad"]
        lines.append(f"{config_label(c):<22}{c['threshold']:>5.2f}{q['exact']:>7.3f}{q['f1']:>7.3f}"
                     f"{q['HasAns_f1']:>7.3f}{c['noans_acc']:>7.3f}{c['evidence_contains']:>7.3f}"
                     f"{c['citation_accuracy']:>7.3f}{c['best_thresholds']['best_f1']:>8.3f}"
                     f"{c['calibration']['ece']:>7.3f}{_f(c['latency']['p50_ms'], 0):>7}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------

MODE_COLORS = {"dense": "#1f77b4", "bm25": "#ff7f0e", "hybrid": "#2ca02c"}
EXTRA_COLORS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _color(i: int, mode: str) -> str:
    return MODE_COLORS.get(mode, EXTRA_COLORS[i % len(EXTRA_COLORS)])


def _subtitle(report: dict[str, Any]) -> str:
    s = report["settings"]
    where = {"all": "gold set, all splits", "squad": f"SQuAD file {Path(str(s.get('squad'))).name}"}.get(
        s.get("split"), f"gold set, {s.get('split')} split")
    return f"{where}, {s['questions']} questions ({s['answerable']} answerable)"


def plot_recall_at_k(report: dict[str, Any], path: Path) -> None:
    """Recall@k for k = 1..10 per retrieval mode; document level left, passage level right."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (lvl, title, unit) in zip(axes, (("doc", "Document level", "documents"),
                                            ("passage", "Passage level", "passages"))):
        for i, (mode, r) in enumerate(report["retrieval"].items()):
            ax.plot(RETRIEVAL_KS, [r[lvl][f"recall@{k}"] for k in RETRIEVAL_KS], marker="o", ms=4, lw=2,
                    color=_color(i, mode), label=f"{mode} (MRR@10 {r[lvl]['mrr@10']:.2f})")
        queries = next(iter(report["retrieval"].values()))[lvl]["queries"]
        ax.set_title(f"{title} ({queries} questions)")
        ax.set_xlabel(f"k (top-k retrieved {unit})")
        ax.set_xticks(RETRIEVAL_KS)
        ax.set_xlim(0.7, RETRIEVAL_K + 0.3)
        ax.set_ylim(0, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", title="mode")
    axes[0].set_ylabel("recall@k (fraction of relevant items found)")
    fig.suptitle(f"Retrieval recall@k by mode\n{_subtitle(report)}", fontsize=11)
    fig.savefig(path, dpi=110)


def _readers(report: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(c["reader"] for c in report["answers"]))


def plot_threshold(report: dict[str, Any], path: Path) -> None:
    """F1 (solid) and coverage (dashed) against the abstention threshold; one panel per reader."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    readers = _readers(report)
    fig = Figure(figsize=(6.2 * len(readers) + 1.0, 4.8), layout="constrained")
    axes = fig.subplots(1, len(readers), sharey=True, squeeze=False)[0]
    for ax, reader in zip(axes, readers):
        cfgs = [c for c in report["answers"] if c["reader"] == reader]
        handles = []
        for i, c in enumerate(cfgs):
            color = _color(i, c["mode"])
            xs = [p["threshold"] for p in c["threshold_curve"]]
            ax.plot(xs, [p["f1"] for p in c["threshold_curve"]], color=color, lw=2)
            ax.plot(xs, [p["coverage"] for p in c["threshold_curve"]], color=color, lw=1.5, ls="--")
            b = c["best_thresholds"]
            if b["best_f1_thresh"] is not None and math.isfinite(b["best_f1_thresh"]):
                ax.plot([min(b["best_f1_thresh"], 1.0)], [b["best_f1"]], marker="*", ms=13, color=color, mec="black",
                        mew=0.6, ls="none")
            handles.append(Line2D([], [], color=color, lw=2, label=config_label(c) if c["setting"] != "open"
                                  else c["mode"]))
        t = cfgs[0]["threshold"]
        ax.axvline(t, color="black", ls=":", lw=1.5)
        handles += [Line2D([], [], color="gray", lw=2, label="F1 (all questions)"),
                    Line2D([], [], color="gray", lw=1.5, ls="--", label="coverage (answered)"),
                    Line2D([], [], color="gray", marker="*", ms=11, mec="black", ls="none", label="best F1"),
                    Line2D([], [], color="black", ls=":", lw=1.5, label=f"configured threshold {t:.2f}")]
        ax.set_title(f"reader: {reader}")
        ax.set_xlabel("abstention threshold on the answer score (abstain when score < threshold)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(handles=handles, loc="best", fontsize=8.5, framealpha=0.9)
    axes[0].set_ylabel("F1 / coverage (fraction)")
    fig.suptitle(f"F1 and coverage against the abstention threshold\n{_subtitle(report)}", fontsize=11)
    fig.savefig(path, dpi=110)


def plot_reliability(report: dict[str, Any], path: Path) -> None:
    """Reliability diagram of the answer score (top) and how many answers fall in each bin (bottom)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    cfgs = report["answers"]
    fig = Figure(figsize=(7.8, 7.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    top.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="perfect calibration")
    width = 0.1 / (len(cfgs) + 1)
    for i, c in enumerate(cfgs):
        color = _color(i, c["mode"]) if len(_readers(report)) == 1 else EXTRA_COLORS[i % len(EXTRA_COLORS)]
        bins = [b for b in c["calibration"]["bins"] if b["count"]]
        label = f"{config_label(c)} (ECE {c['calibration']['ece']:.3f}, n={c['calibration']['n']})"
        biggest = max((b["count"] for b in bins), default=1)
        top.plot([b["mean_score"] for b in bins], [b["accuracy"] for b in bins], lw=1.8, color=color, label=label)
        top.scatter([b["mean_score"] for b in bins], [b["accuracy"] for b in bins], color=color, zorder=3,
                    s=[18 + 160 * b["count"] / biggest for b in bins], edgecolors="white", linewidths=0.6)
        allb = c["calibration"]["bins"]
        xs = [b["lo"] + width * (i + 1) for b in allb]
        bottom.bar(xs, [b["count"] for b in allb], width=width, color=color, align="center")
    top.set_ylabel("accuracy in bin (answer F1 ≥ 0.5)")
    top.set_xlim(0, 1)
    top.set_ylim(-0.02, 1.03)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8.5)
    top.set_title("Accuracy per score bin against the bin's mean score (marker area ∝ answers in the bin)",
                  fontsize=10)
    bottom.set_xlabel("answer score (reader confidence, 10 equal-width bins)")
    bottom.set_ylabel("answers in bin")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xticks([i / 10 for i in range(11)])
    bottom.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Reliability of the answer score\n{_subtitle(report)}", fontsize=11)
    fig.savefig(path, dpi=110)


__all__ = [
    "GoldItem", "EvalPlan", "SquadSet", "SquadParagraph", "load_gold", "load_squad", "evaluate", "run_gold_eval",
    "run_squad_eval", "run_from_cli", "write_report", "render_markdown", "summary_text",
]
