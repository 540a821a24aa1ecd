"""The report of one evaluation: assembled from the scores, written as ``report.json`` and
``report.md``, and summed up in a few terminal lines.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .plan import CORRECT_DEFINITION, EvalPlan, LATENCY_METHOD, RETRIEVAL_K, TABLE_KS, config_label, primary_mode
from .plots import plot_recall_at_k, plot_reliability, plot_threshold
from .scoring import worst_failures
from ..pipeline import QA


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
        "settings": list(plan.settings), "thresholds": {name: float(q.tuning().threshold) for name, q in qas.items()},
        "questions": len(plan.items), "answerable": sum(it.answerable for it in plan.items),
        "unanswerable": sum(not it.answerable for it in plan.items), "retrieval_k": RETRIEVAL_K,
        "reader_k": {name: q.read_k for name, q in qas.items()},
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
        f"- retrieval depth {s['retrieval_k']}; passages read (k): "
        + (", ".join(f"{r} {k}" for r, k in s["reader_k"].items()) or "none") + "; "
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
