"""The report's three plots (recall@k, the threshold sweep, reliability); matplotlib is imported
inside each function.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .plan import RETRIEVAL_K, RETRIEVAL_KS, config_label


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
