"""Shared steps of fitting a reader: logistic weights, Platt calibration, the abstention threshold,
and the settings file they end in (``rag/models/<reader>_settings.json``).

    python -m rag.train.tuning mpnet --out rag/models/mpnet_settings.json
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..eval.datasets import load_gold
from ..eval.metrics import best_threshold_with_noans, best_thresholds, f1_score, max_over_golds, threshold_curve
from ..readers.settings import Calibrator, describe_setting, load_reader_settings, setting_key

LABEL = "token F1 >= 0.6"
#: The highest abstention threshold a settings file gets (``math.inf``, "never answer", is capped to it).
MAX_THRESHOLD = 0.95


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """How a settings file was made, as its ``command`` entry records it."""
    return f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:])


def gold_dev(path: str | Path) -> list[dict[str, Any]]:
    """The gold set's dev split (never the test split), read by ``eval.datasets.load_gold`` (bad
    lines are refused with their line number), as plain dicts."""
    return [asdict(it) for it in load_gold(Path(path), "dev")]


def fit_weights(X_squad: np.ndarray, y_squad: np.ndarray, X_gold: np.ndarray, y_gold: np.ndarray,
                names: Sequence[str]) -> dict[str, float]:
    """A logistic regression over feature columns ``names`` (column 0 is the bias).

    The gold rows weigh as much, in total, as the SQuAD rows: they are the domain we answer in.
    """
    from sklearn.linear_model import LogisticRegression

    w = np.concatenate([np.ones(len(y_squad)), np.full(len(y_gold), max(1.0, len(y_squad) / max(1, len(y_gold))))])
    X, y = np.vstack([X_squad, X_gold]), np.concatenate([y_squad, y_gold])
    cols = list(range(1, len(names)))
    lr = LogisticRegression(C=1.0, max_iter=2000)
    lr.fit(X[:, cols], y, sample_weight=w)
    weights = {"bias": float(lr.intercept_[0])}
    weights.update({names[i]: float(c) for i, c in zip(cols, lr.coef_[0])})
    print(f"fitted on {len(y)} rows ({int(y.sum())} positive)", file=sys.stderr)
    return weights


def calibrate_on_dev(qa, dev: list[dict], min_noans: float | None = None):
    """Platt-scale the answer score on the gold dev split, then pick the abstention threshold:
    the best-F1 one, or with ``min_noans`` the best-F1 one among those that abstain on at least
    that fraction of dev's unanswerable questions (``eval.metrics.best_threshold_with_noans``).

    Returns ``(calibrator, threshold, best)`` where ``best`` is ``eval.metrics.best_thresholds``
    plus ``threshold_rule`` and, with ``min_noans``, ``constrained`` (the chosen threshold's
    F1, NoAns accuracy, HasAns F1 and coverage on dev).
    """
    from sklearn.linear_model import LogisticRegression

    # Fit on the reader's raw score: ``qa`` was loaded with the calibration in the settings file
    # (the previous fit's), and the new calibrator replaces it, it does not stack on it.
    qa.answerer.calibrator = Calibrator()
    qa.answerer.tunings = {}  # nor do the sweep's per-setting calibrations apply: every setting reads raw
    answers = qa.ask_many([g["question"] for g in dev], threshold=0.0)
    raw = np.array([x.score if x.text is not None else 0.0 for x in answers])
    correct = np.array([max_over_golds(f1_score, x.text, g["answers"]) >= 0.5 if g["answerable"] else False
                        for x, g in zip(answers, dev)], dtype=int)
    z = np.log(np.clip(raw, 1e-6, 1 - 1e-6) / np.clip(1 - raw, 1e-6, 1))
    cal = LogisticRegression(C=10.0).fit(z[:, None], correct)
    calibrator = Calibrator(float(cal.coef_[0][0]), float(cal.intercept_[0]), identity=False)
    scores = {g["id"]: calibrator(s) for g, s in zip(dev, raw)}
    preds = {g["id"]: x.text for g, x in zip(dev, answers)}
    golds = {g["id"]: g["answers"] if g["answerable"] else [] for g in dev}
    best = best_thresholds(preds, scores, golds)
    if min_noans is None:
        best["threshold_rule"] = "best dev F1"
        threshold = float(min(best["best_f1_thresh"], MAX_THRESHOLD))
        print(f"threshold {threshold:.3f}: best dev F1 {best['best_f1']:.3f}", file=sys.stderr)
        return calibrator, threshold, best
    chosen = best_threshold_with_noans(preds, scores, golds, min_noans)
    threshold = float(min(chosen["thresh"], MAX_THRESHOLD))
    if threshold != chosen["thresh"]:  # capped: record what the shipped threshold gives, not the uncapped one
        row = threshold_curve(preds, scores, golds, [threshold])[0]
        chosen = {"f1": row["f1"], "thresh": threshold, "no_ans_acc": row["no_ans_acc"],
                  "has_ans_f1": row["has_ans_f1"], "coverage": row["coverage"]}
    best["threshold_rule"] = f"best dev F1 with dev NoAns >= {min_noans:g}"
    best["constrained"] = chosen
    print(f"threshold {threshold:.3f}: dev F1 {chosen['f1']:.3f}, NoAns {chosen['no_ans_acc']:.3f} "
          f"(unconstrained best F1 {best['best_f1']:.3f} at {best['best_f1_thresh']:.3f})", file=sys.stderr)
    return calibrator, threshold, best


def fit_settings(reader: str, names: Sequence[str], squad_rows: tuple[np.ndarray, np.ndarray],
                 gold_rows: tuple[np.ndarray, np.ndarray], load_with: Callable[[dict[str, float]], Any],
                 dev: list[dict], *, fitted_on: dict[str, Any], command: str, t0: float,
                 min_noans: float | None = None) -> dict[str, Any]:
    """Fit the weights on the candidate rows, calibrate the reader they make on the gold dev split,
    and return its settings (weights, calibration, threshold, provenance).

    ``load_with(weights)`` returns a ``QA`` whose reader uses ``weights``.
    """
    (Xs, ys), (Xg, yg) = squad_rows, gold_rows
    weights = fit_weights(Xs, ys, Xg, yg, names)
    print("weights:", json.dumps(weights, indent=1), file=sys.stderr)
    qa = load_with(weights)
    calibrator, threshold, best = calibrate_on_dev(qa, dev, min_noans)
    return {"reader": reader, "weights": weights, "k": qa.read_k, "calibration": calibrator.to_dict(),
            "threshold": threshold,
            "fitted_on": {**fitted_on, "gold": "dev split", "rows": int(len(ys) + len(yg)),
                          "positives": int(ys.sum() + yg.sum()), "label": LABEL},
            **threshold_fields(best), "command": command, "date": time.strftime("%Y-%m-%d"),
            "seconds": round(time.time() - t0, 1)}


def threshold_fields(best: dict[str, Any]) -> dict[str, Any]:
    """What a settings file records about its threshold: the rule, dev's best F1 and, for a
    constrained threshold, dev's F1 and NoAns accuracy at it."""
    out = {"threshold_rule": best["threshold_rule"], "dev_best_f1": best["best_f1"]}
    if "constrained" in best:
        c = best["constrained"]
        out.update({"dev_f1_at_threshold": c["f1"], "dev_noans_at_threshold": c["no_ans_acc"]})
    return out


def dev_f1(best: dict[str, Any]) -> float:
    """The dev F1 a threshold choice gives: at the constrained threshold when there is one."""
    return best["constrained"]["f1"] if "constrained" in best else best["best_f1"]


def choose_k(sweep: Sequence[tuple[int, Any, float, dict[str, Any]]],
             questions: int, costs: Sequence[float] | None = None,
             max_cost: float | None = None) -> tuple[int, Any, float, dict[str, Any]]:
    """Of ``(k, calibrator, threshold, best)`` rows, one per reading setting calibrated on
    ``questions`` dev questions, the cheapest whose dev F1 (``dev_f1``) is within one question's
    worth (``1 / questions``) of the best: a tie, as ``readers.registry.dev_choice`` counts one, and
    reading more must earn its latency. ``costs``: what each row reads (the mean characters per dev
    question, ``read_chars``); by default its k. ``max_cost``: a latency budget; only rows that
    cost at most this compete (``within_budget`` says which). The index of the row chosen is
    ``sweep.index``."""
    cost = [costs[i] if costs is not None else row[0] for i, row in enumerate(sweep)]
    allowed = within_budget(cost, max_cost)
    top = max(dev_f1(sweep[i][3]) for i in allowed)
    ok = [i for i in allowed if dev_f1(sweep[i][3]) >= top - 1.0 / max(questions, 1) - 1e-12]
    return sweep[min(ok, key=lambda i: (cost[i], sweep[i][0]))]


def within_budget(costs: Sequence[float], max_cost: float | None) -> list[int]:
    """The indices of the settings whose cost is at most ``max_cost`` (all without one); a
    ``ValueError`` that names the cheapest when none is."""
    allowed = [i for i, c in enumerate(costs) if max_cost is None or c <= max_cost]
    if not allowed:
        raise ValueError(f"no setting reads at most {max_cost:,.0f} characters per question (the cheapest reads "
                         f"{min(costs):,.0f}): raise --max-read-chars or sweep smaller k or context")
    return allowed


def read_chars(qa, questions: Sequence[str], k: int, context: int, windows: str = "merged") -> float:
    """The mean number of characters the reader reads per question at ``k`` passages widened by
    ``context`` and laid out as ``windows`` (``rag.windows.reading_windows``; text in two separate
    windows counts twice): the cost ``choose_k`` weighs."""
    from ..windows import reading_windows

    hits = qa.retriever.search_many(list(questions), k, qa.mode, qa.retriever.encode(list(questions)))
    return float(np.mean([sum(len(w.text) for w in reading_windows(ps, qa.index, context, windows)) for ps in hits]))


def _whole_numbers(text: str, least: int, what: str, example: str) -> list[int]:
    """A comma-separated list of whole numbers of at least ``least``, sorted, for an option's parser."""
    import argparse

    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        values = []
    if not values or values[0] < least:
        raise argparse.ArgumentTypeError(f"expected {what}, comma-separated (e.g. {example}), got {text!r}")
    return values


def _ks(text: str) -> list[int]:
    return _whole_numbers(text, 1, "whole numbers of at least 1", "5,8,10")


def _contexts(text: str) -> list[int]:
    return _whole_numbers(text, 0, "whole numbers of characters, 0 or more", "0,150,300")


def _window_modes(text: str) -> list[str]:
    import argparse

    from ..windows import WINDOW_MODES

    modes = [x.strip() for x in text.split(",") if x.strip()]
    if not modes or any(m not in WINDOW_MODES for m in modes):
        raise argparse.ArgumentTypeError(f"expected {' and/or '.join(WINDOW_MODES)}, comma-separated "
                                         f"(e.g. merged,separate), got {text!r}")
    return list(dict.fromkeys(modes))


def _budget(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of characters per question (e.g. 4600), got {text!r}")
    return value


def _fraction(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (e.g. 0.85), got {text!r}")
    return value


def add_min_noans_option(ap) -> None:
    """The ``--min-noans`` option shared by the fitting commands (checked before any reader runs)."""
    ap.add_argument("--min-noans", type=_fraction, default=None, metavar="FRACTION",
                    help="choose the best-F1 threshold among those that abstain on at least this fraction "
                         "of the gold dev split's unanswerable questions (default: plain best F1)")


def write_settings(path: str | Path, settings: dict[str, Any]) -> None:
    """Write a reader's settings file (whole, then renamed into place) and say what it holds."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    k = f"k {settings['k']}, " if settings.get("k") else ""
    k += f"context {settings['context']} ({settings.get('windows', 'merged')} windows), " if settings.get("context") else ""
    print(f"wrote {path}: {k}threshold {settings['threshold']:.3f}, gold dev best F1 {settings['dev_best_f1']:.3f}",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Calibrate a reader's score and choose its abstention threshold on the gold dev split.

        python -m rag.train.tuning mpnet --min-noans 0.85 --k 5,8,10,12 --out rag/models/mpnet_settings.json

    With several ``--k`` (and ``--context``: characters of neighbouring text read on each side of a
    passage, and ``--windows``: how those widened passages are laid out, ``rag.windows``) the
    reader is calibrated at each setting, and the one that reads the fewest characters among those
    whose dev F1 is within one question's worth of the best is kept with its calibration and
    threshold (the sweep is recorded in the settings file, each setting with its own calibration and
    threshold, which answering at that setting uses: ``rag.answer.Answerer.tuning``). Latency enters
    through ``--max-read-chars``: only the settings that read at most that many characters per dev
    question may be chosen (all are calibrated and recorded). ``--keep-chosen`` recalibrates and
    records the sweep but keeps the settings file's chosen setting with its calibration and
    threshold (the incumbent), provided the rule still chooses that setting. ``--keep-rows`` carries
    the settings file's rows for settings this sweep does not try into the new file.
    For readers without weights of their own to fit (the neural reader), or to recalibrate a
    fitted one (features, fused: their weights are kept): Platt scaling of its best-answer score
    and the SQuAD-2.0 best-F1 threshold, both on the gold dev split only.
    """
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reader", help="reader name (e.g. neural) or a QA model folder")
    ap.add_argument("--gold", default="evals/gold.jsonl")
    ap.add_argument("--docs", default="seeds")
    ap.add_argument("--k", type=_ks, default=None, metavar="K[,K...]",
                    help="passages the reader reads per question; several (e.g. 5,8,10,12) are each calibrated "
                         "on dev and the smallest k within one question's worth of the best dev F1 is kept "
                         "(default: the reader's k)")
    ap.add_argument("--context", type=_contexts, default=None, metavar="CHARS[,CHARS...]",
                    help="characters of neighbouring text the reader reads on each side of a passage "
                         "(rag.windows); several (e.g. 0,150,300) are each calibrated at each k, and the "
                         "setting that reads least within one question's worth of the best dev F1 is kept "
                         "(default: the reader's context)")
    ap.add_argument("--windows", type=_window_modes, default=None, metavar="MODE[,MODE]",
                    help="with a context: merged (the widened passages of one article that overlap read as one "
                         "window) and/or separate (each passage in its own window); each is calibrated at each "
                         "k and context above 0, like them (default: the reader's)")
    ap.add_argument("--max-read-chars", type=_budget, default=None, metavar="CHARS",
                    help="a latency budget: only settings that read at most this many characters per dev question "
                         "(the sweep's read_chars) may be chosen; all are still calibrated and recorded")
    ap.add_argument("--keep-chosen", action="store_true",
                    help="keep the reader's chosen setting with its calibration and threshold, and only recalibrate "
                         "and record the sweep's rows (refused when the rule would choose another setting)")
    ap.add_argument("--keep-rows", action="store_true",
                    help="carry the settings file's sweep rows for settings this sweep does not try into the new "
                         "file (each keeps its own calibration and threshold); refused when one of them within the "
                         "budget beats the setting chosen by more than one question's worth (sweep it too)")
    ap.add_argument("--out", required=True)
    add_min_noans_option(ap)
    a = ap.parse_args(argv)

    import rag

    from ..embedding import Embedder

    t0 = time.time()
    dev = gold_dev(a.gold)
    emb = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        rag.build_index(a.docs, tmp, embedder=emb)
        qa = rag.load(tmp, embedder=emb, reader=a.reader)
        name = qa.answerer.reader.name
        incumbent = dict(load_reader_settings(name))
        kept = qa.answerer.chosen  # the incumbent's setting, as answering keys it (None: no tuned k)
        if a.keep_chosen and kept is None:
            ap.error(f"--keep-chosen: the {name} reader has no chosen setting to keep (its settings file has no k)")
        questions = [g["question"] for g in dev]
        layouts = a.windows or [qa.answerer.windows]
        settings_of = [(k, context, windows)
                       for context in (a.context if a.context is not None else [qa.answerer.context])
                       for windows in (layouts if context else layouts[:1])  # without context nothing to lay out
                       for k in a.k or [qa.read_k]]
        costs = []
        for k, context, windows in settings_of:  # retrieval only: the budget is checked before any reading
            qa.answerer.context, qa.answerer.windows = context, windows
            costs.append(read_chars(qa, questions, k, context, windows))
        try:
            within_budget(costs, a.max_read_chars)
        except ValueError as e:
            ap.error(f"--max-read-chars: {e}")
        sweep = []
        for k, context, windows in settings_of:
            qa.answerer.context, qa.answerer.windows, qa.k = context, windows, k
            print(f"{describe_setting(setting_key(k, context, windows))}:", file=sys.stderr)
            sweep.append((k, *calibrate_on_dev(qa, dev, a.min_noans)))
        chosen = choose_k(sweep, len(dev), costs, a.max_read_chars)
        k, calibrator, threshold, best = chosen
        _, context, windows = settings_of[sweep.index(chosen)]
    command = command_line("rag.train.tuning", argv)
    # the precision the reader ran in (a neural reader's, once it has read): calibrations are fitted on its scores
    precision = getattr(qa.answerer.reader, "precision_used", None)
    rows = [{"k": kk, "context": c, **({"windows": w} if c else {}), "read_chars": round(cost), "dev_f1": dev_f1(b),
             "threshold": th, "calibration": cal.to_dict()}
            for (kk, cal, th, b), (_, c, w), cost in zip(sweep, settings_of, costs)]
    carried: list[dict[str, Any]] = []
    if a.keep_rows:
        try:
            carried = kept_rows(incumbent, rows, dev_f1(best), len(dev), a.max_read_chars)
            rows = rows + carried
        except ValueError as e:
            print(f"error: --keep-rows: {e}; nothing written", file=sys.stderr)
            return 2
    if a.keep_chosen:
        if setting_key(k, context, windows) != kept:
            print(f"error: --keep-chosen: the sweep's rule chooses {describe_setting(setting_key(k, context, windows))}"
                  f", not the kept {describe_setting(kept)}; nothing written. Run without --keep-chosen to "
                  "choose it, or narrow the sweep (--k, --context, --windows, --max-read-chars)", file=sys.stderr)
            return 2
        write_settings(a.out, keep_chosen(incumbent, rows, sweep.index(chosen), command, a.max_read_chars,
                                          len(dev), time.time() - t0, precision))
        return 0
    # A reader with fitted weights (features, fused) keeps them and their provenance: only the
    # calibration and the threshold are replaced.
    settings = incumbent or {"reader": name, "command": command}
    for stale in ("dev_f1_at_threshold", "dev_noans_at_threshold", "k_sweep", "k_rule", "context", "windows",
                  "max_read_chars"):
        settings.pop(stale, None)
    if not carried:  # the record of an earlier sweep describes rows of its own; none of them is left
        settings.pop("sweep_calibrated_on", None)
    if len(rows) > 1:
        settings["k_sweep"] = rows
        settings["k_rule"] = K_RULE
    if a.max_read_chars is not None:
        settings["max_read_chars"] = a.max_read_chars
    if context:
        settings["context"] = context
        settings["windows"] = windows
    settings.update({"k": k, "calibration": calibrator.to_dict(), "threshold": threshold, **threshold_fields(best),
                     "calibrated_on": {"gold": "dev split", "questions": len(dev), "command": command,
                                       "date": time.strftime("%Y-%m-%d"), "seconds": round(time.time() - t0, 1),
                                       **({"precision": precision} if precision else {})}})
    write_settings(a.out, settings)
    return 0


def _row_key(row: dict[str, Any]) -> tuple:
    return setting_key(row["k"], row.get("context", 0), row.get("windows", "merged"))


def kept_rows(incumbent: dict[str, Any], rows: list[dict[str, Any]], chosen_f1: float, questions: int,
              max_read_chars: int | None) -> list[dict[str, Any]]:
    """The incumbent's sweep rows for settings not among ``rows`` (``--keep-rows``), unchanged: each
    is a calibration of its own setting on the same dev split. A ``ValueError`` when one of them,
    within the budget, beats ``chosen_f1`` by more than one question's worth: the rule would have to
    choose it, so it has to be swept again."""
    new = {_row_key(r) for r in rows}
    carried = [dict(r) for r in incumbent.get("k_sweep", []) if _row_key(r) not in new]
    for r in carried:
        r.pop("kept", None)  # the incumbent's chosen row: its calibration stays what it was, nothing is kept now
        within = max_read_chars is None or r.get("read_chars", float("inf")) <= max_read_chars
        if within and r["dev_f1"] > chosen_f1 + 1.0 / max(questions, 1) + 1e-12:
            raise ValueError(f"the settings file's {describe_setting(_row_key(r))} (dev F1 {r['dev_f1']:.3f}) beats "
                             f"the sweep's choice ({chosen_f1:.3f}) within the budget: add it to the sweep")
    return carried


K_RULE = ("of the k, context and windows settings within the latency budget (max_read_chars, when given) whose "
          "dev F1 at their threshold is within one question's worth (1 / dev questions) of the best, the one that "
          "reads the fewest characters per dev question; each row keeps its own calibration and threshold, which "
          "answering at that setting uses")


def keep_chosen(incumbent: dict[str, Any], rows: list[dict[str, Any]], chosen: int, command: str,
                max_read_chars: int | None, questions: int, seconds: float,
                precision: str | None = None) -> dict[str, Any]:
    """The incumbent settings with a new sweep's rows, the chosen setting's row carrying the
    incumbent's own calibration and threshold (what answering there uses) beside this sweep's dev F1
    for it (what the rule compared), and a record of the recalibration (``--keep-chosen``)."""
    settings = dict(incumbent)
    rows = [dict(r) for r in rows]
    refit = rows[chosen]["threshold"]
    rows[chosen].update({"calibration": settings["calibration"], "threshold": settings["threshold"],
                         "kept": ("the chosen setting's calibration and threshold, from calibrated_on; dev_f1 is "
                                  f"this sweep's refit of the setting, at its own threshold {refit:.4f}")})
    settings["k_sweep"] = rows
    settings["k_rule"] = K_RULE
    settings.pop("max_read_chars", None)
    if max_read_chars is not None:
        settings["max_read_chars"] = max_read_chars
    settings["sweep_calibrated_on"] = {"gold": "dev split", "questions": questions, "command": command,
                                       "date": time.strftime("%Y-%m-%d"), "seconds": round(seconds, 1),
                                       **({"precision": precision} if precision else {})}
    return settings


if __name__ == "__main__":
    sys.exit(main())
