"""Do the answering rules still help? The unknown-name gate and the "how many" rule, each on and
off, measured on the gold dev split (never the test split) with a reader at its shipped setting.

    .venv/bin/python scripts/ablate_rules.py [--reader mpnet] [--min-noans 0.85]

The unknown-name gate (``rag.answer.unknown_names``) abstains before any reading on a question
that names what no article mentions; the "how many" rule answers a "how many" question only with a
span that holds a count. Each of the four variants is Platt-calibrated and thresholded on dev on
its own (``rag.train.tuning.calibrate_on_dev``, the rule the shipped settings were chosen by), so
a rule is judged by the dev F1 it gives at its best threshold, not at a threshold fitted with it.
Each question is read once (the readings are shared by the variants). Prints one row per variant
and the questions each rule decides.
"""
from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time


def memoized_read(reader) -> None:
    """``reader.read`` remembered per question and passages: the variants share one reading."""
    read = reader.read
    cache: dict = {}

    @functools.wraps(read)
    def wrapper(question, passages, qvec=None):
        key = (question, tuple((p.doc_id, p.start, p.end) for p in passages))
        if key not in cache:
            cache[key] = read(question, passages, qvec)
        return cache[key]

    reader.read = wrapper


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reader", default="mpnet")
    ap.add_argument("--gold", default="evals/gold.jsonl")
    ap.add_argument("--docs", default="seeds")
    ap.add_argument("--min-noans", type=float, default=0.85,
                    help="the NoAns floor the threshold is chosen under (as the reader's settings were)")
    a = ap.parse_args(argv)

    import rag
    from rag.answer import expects_count, unknown_names
    from rag.readers.settings import describe_setting, setting_key
    from rag.train.tuning import calibrate_on_dev, gold_dev

    t0 = time.time()
    dev = gold_dev(a.gold)
    with tempfile.TemporaryDirectory() as tmp:
        rag.build_index(a.docs, tmp)
        qa = rag.load(tmp, reader=a.reader)
        ans = qa.answerer
        memoized_read(ans.reader)
        lexical = qa.index.lexical
        gated = [g["id"] for g in dev if unknown_names(g["question"], lexical)]
        counted = [g["id"] for g in dev if expects_count(g["question"])]
        print(f"{a.reader} at {describe_setting(setting_key(qa.read_k, ans.context, ans.windows))}; "
              f"{len(dev)} dev questions; the gate names an unknown word in {len(gated)} "
              f"({', '.join(gated) or 'none'}), {len(counted)} ask 'how many' ({', '.join(counted) or 'none'})",
              flush=True)
        rows = []
        for gate in (True, False):
            for count in (True, False):
                ans.name_gate, ans.count_rule = gate, count
                _, threshold, best = calibrate_on_dev(qa, dev, a.min_noans)
                c = best["constrained"]  # the threshold chosen under the NoAns floor
                rows.append((gate, count, c["f1"], c["no_ans_acc"], c["has_ans_f1"], threshold, best["best_f1"]))
    print("\n| name gate | 'how many' rule | dev F1 under the floor | NoAns | HasAns F1 | threshold | best F1 any threshold |")
    print("|---|---|---|---|---|---|---|")
    for gate, count, f1, noans, hasans, th, bf1 in rows:
        print(f"| {'on' if gate else 'off'} | {'on' if count else 'off'} | {f1:.3f} | {noans:.3f} | {hasans:.3f} | "
              f"{th:.3f} | {bf1:.3f} |")
    print(f"\n({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
