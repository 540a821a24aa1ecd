"""One run, one table: the readers side by side on every data set we measure answers on.

    python -m rag.eval.reader_table --squad ../shared/data/squad-pool.json.gz \
        --new-wiki ../shared/data/squadshifts-new-wiki.json.gz --out evals/reader_table

Rows (each measured in this one run, on this machine):
  * SQuAD dev (the held-out pool articles of ``rag/models/reader/dev_titles.json``, gold paragraph
    given, ``--dev-sample`` questions drawn with seed 13 or all 3,751): the neural readers
    (MiniLM, MPNet in fp32 and in int8), HasAns F1 of the best span, overall F1 and NoAns accuracy
    at the best threshold (the official SQuAD 2.0 sweep), questions per second;
  * SQuAD dev with near misses (``--near-misses K``, ``--near-miss-sample`` questions): the same
    readers, each question read with its paragraph and the K paragraphs of its article that share
    the most words with it and hold no gold answer, jointly as the pipeline reads retrieved passages
    (``rag.train.neural.NearMisses``): what on-topic passages without the answer do to spans and
    abstention;
  * SQuADShifts new-wiki (``--wiki-sample`` questions, all answerable): HasAns F1 of the best span;
  * the gold set (``evals/gold.jsonl``), dev and test split, hybrid retrieval at the library's k,
    every reader through ``rag.load``: HasAns F1, evidence containment, NoAns accuracy, overall F1
    at each reader's tuned threshold, the best F1 any threshold reaches (read it on dev only),
    paraphrased / literal HasAns F1, per-type HasAns F1, p50 latency.

Writes ``OUT/reader_table.json`` (everything) and ``OUT/reader_table.md`` (the tables), and prints
the markdown. The gold-set reports of each split stay in ``OUT/gold-<split>/``.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

GOLD_READERS = ("features", "minilm", "fast", "mpnet", "fused")


def neural_rows(data: str, *, titles: list[str] | None, sample: int | None, progress: bool,
                mpnet_precisions: tuple[str, ...] = ("fp32", "int8"), distractors: int = 0) -> list[dict[str, Any]]:
    from ..readers import registry
    from ..train.neural import evaluate_model

    rows = []
    runs = [("minilm", "minilm", "fp32")] + [(f"mpnet {p}", "mpnet", p) for p in mpnet_precisions]
    for label, model, precision in runs:
        if registry.missing_reason(model):
            print(f"reader_table: skipping {label}: {registry.missing_reason(model)}", file=sys.stderr)
            continue
        m = evaluate_model(registry.model_folder(model), data, titles=titles, sample=sample, precision=precision,
                           progress=progress, distractors=distractors)
        rows.append({"reader": label, **m})
        print(f"  {label}: {json.dumps({k: m.get(k) for k in ('HasAns_f1_span', 'HasAns_f1', 'best_f1', 'seconds')})}",
              file=sys.stderr, flush=True)
    return rows


def gold_rows(gold: Path, docs: Path, out: Path, split: str, readers: tuple[str, ...], progress: bool
              ) -> list[dict[str, Any]]:
    from .runner import run_gold_eval

    rep = run_gold_eval(gold, out / "index", docs, out / f"gold-{split}", split=split, modes=("hybrid",),
                        readers=readers, progress=progress)
    rows = []
    for c in rep["answers"]:
        s = c["squad"]
        para = c.get("by_paraphrase", {})
        rows.append({
            "reader": c["reader"], "split": split, "questions": rep["settings"]["questions"],
            "hasans_f1": s["HasAns_f1"], "f1": s["f1"], "noans_acc": c["noans_acc"],
            "evidence_contains": c["evidence_contains"], "best_f1": c["best_thresholds"]["best_f1"],
            "threshold": c["threshold"], "p50_ms": c["latency"]["p50_ms"], "p95_ms": c["latency"]["p95_ms"],
            "paraphrased_hasans_f1": para.get("True", {}).get("hasans_f1"),
            "literal_hasans_f1": para.get("False", {}).get("hasans_f1"),
            "by_type_hasans_f1": {t: g["hasans_f1"] for t, g in c["by_type"].items() if g["answerable"]},
        })
    return rows


def _f(x: Any) -> str:
    if x is None:
        return "-"
    x = float(x)
    return f"{x / 100:.3f}" if x > 1.0 else f"{x:.3f}"


def _squad_table(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown lines of a table of given-paragraph SQuAD v2 rows (``evaluate_model``'s metrics)."""
    return ["| reader | HasAns F1 (best span) | overall F1 at best threshold | HasAns F1 there | NoAns acc there | questions/s |",
            "|---|---|---|---|---|---|",
            *(f"| {r['reader']} | {_f(r['HasAns_f1_span'])} | {_f(r['best_f1'])} | "
              f"{_f(r['best_f1_HasAns_f1'])} | {_f(r['best_f1_NoAns_acc'])} | {r['questions_per_s']} |" for r in rows)]


def markdown(res: dict[str, Any]) -> str:
    out = [f"Measured {res['date']} on {res['machine']} in one run of `{res['command']}` "
           f"({res['seconds'] / 60:.0f} min).", ""]
    if res.get("squad_dev"):
        n = res["squad_dev"][0]["total"]
        out += [f"**SQuAD dev** (held-out pool articles, gold paragraph, {n} questions):", "",
                *_squad_table(res["squad_dev"]), ""]
    if res.get("squad_near_misses"):
        rows = res["squad_near_misses"]
        out += [f"**SQuAD dev with near misses** ({rows[0]['total']} of those questions, each read jointly with its "
                f"paragraph and the {rows[0]['distractors']} paragraphs of its article that share the most words with "
                "it and hold no gold answer):", "", *_squad_table(rows), ""]
    if res.get("new_wiki"):
        n = res["new_wiki"][0].get("total") or res["new_wiki"][0].get("HasAns_total")
        out += [f"**SQuADShifts new-wiki** (test only, gold paragraph, {n} questions): HasAns F1 "
                + ", ".join(f"{r['reader']} {_f(r.get('HasAns_f1_span', r.get('HasAns_f1')))}" for r in res["new_wiki"]),
                ""]
    for split in ("dev", "test"):
        rows = [r for r in res.get("gold", []) if r["split"] == split]
        if not rows:
            continue
        out += [f"**Gold {split} split** ({rows[0]['questions']} questions, hybrid retrieval, each reader's tuned "
                "threshold):", "",
                "| reader | HasAns F1 | evidence | NoAns | overall F1 | best F1 (any threshold) | paraphrased | literal | p50 ms |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| {r['reader']} | {_f(r['hasans_f1'])} | {_f(r['evidence_contains'])} | {_f(r['noans_acc'])} | "
                       f"{_f(r['f1'])} | {_f(r['best_f1'])} | {_f(r['paraphrased_hasans_f1'])} | "
                       f"{_f(r['literal_hasans_f1'])} | {r['p50_ms']:.0f} |")
        types = sorted({t for r in rows for t in r["by_type_hasans_f1"]})
        out += ["", "HasAns F1 by type: | reader | " + " | ".join(types) + " |",
                "|---|" + "---|" * len(types)]
        for r in rows:
            out.append(f"| {r['reader']} | " + " | ".join(_f(r["by_type_hasans_f1"].get(t)) for t in types) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad", default=None, help="the SQuAD pool (its dev articles are scored)")
    ap.add_argument("--dev-sample", type=int, default=None, help="SQuAD dev questions (default: all)")
    ap.add_argument("--near-misses", type=int, default=0, metavar="K",
                    help="also score SQuAD dev with K near-miss paragraphs of each question's article read "
                         "jointly with its own (0: not)")
    ap.add_argument("--near-miss-sample", type=int, default=1000,
                    help="SQuAD dev questions for the near-miss rows (seed 13; default 1000)")
    ap.add_argument("--new-wiki", default=None, help="squadshifts-new-wiki.json.gz")
    ap.add_argument("--wiki-sample", type=int, default=None, help="new-wiki questions (default: all)")
    ap.add_argument("--mpnet-precisions", default="fp32,int8", help="MPNet rows on SQuAD, comma-separated: any of fp32, int8, bf16")
    ap.add_argument("--gold", default="evals/gold.jsonl")
    ap.add_argument("--docs", default="seeds")
    ap.add_argument("--splits", default="dev,test", help="gold splits to score ('' for none)")
    ap.add_argument("--readers", default=",".join(GOLD_READERS), help="readers for the gold set")
    ap.add_argument("--out", default="evals/reader_table")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.near_misses < 0:
        ap.error(f"--near-misses: {a.near_misses} is not a number of paragraphs; pass 0 (none) or more, e.g. 4")
    if a.near_misses and not a.squad:
        ap.error("--near-misses scores SQuAD dev articles: pass --squad too")

    from ..train.neural import resolve_dev_titles
    from .datasets import squad_articles

    t0 = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "command": "python -m rag.eval.reader_table " +
                           " ".join(argv if argv is not None else sys.argv[1:]),
                           "machine": f"{platform.processor() or platform.machine()}, "
                                      f"{__import__('os').cpu_count()} cores"}
    try:
        from ..readers.neural import cpu_has_native_bf16

        res["machine"] += ", native bf16" if cpu_has_native_bf16() else ", no native bf16"
    except Exception:  # pragma: no cover
        pass
    precisions = tuple(p for p in a.mpnet_precisions.split(",") if p)
    from ..readers.neural import PRECISIONS

    bad = [p for p in precisions if p not in PRECISIONS[1:]]
    if bad:
        ap.error(f"--mpnet-precisions: unknown {', '.join(bad)}; use a comma list of fp32, int8, bf16")
    if a.squad:
        titles = resolve_dev_titles(squad_articles(a.squad))
        res["squad_dev"] = neural_rows(a.squad, titles=titles, sample=a.dev_sample, progress=not a.quiet,
                                       mpnet_precisions=precisions)
        if a.near_misses:
            res["squad_near_misses"] = neural_rows(a.squad, titles=titles, sample=a.near_miss_sample,
                                                   progress=not a.quiet, mpnet_precisions=precisions,
                                                   distractors=a.near_misses)
    if a.new_wiki:
        res["new_wiki"] = neural_rows(a.new_wiki, titles=None, sample=a.wiki_sample, progress=not a.quiet,
                                      mpnet_precisions=precisions)
    readers = tuple(r for r in a.readers.split(",") if r)
    res["gold"] = []
    for split in [s for s in a.splits.split(",") if s]:
        res["gold"] += gold_rows(Path(a.gold), Path(a.docs), out, split, readers, not a.quiet)
    res["seconds"] = round(time.time() - t0, 1)
    (out / "reader_table.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    md = markdown(res)
    (out / "reader_table.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
