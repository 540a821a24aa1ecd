"""Indexing throughput (chunks/s) as a ratio to the raw encoder's throughput, measured in one run.

    python benchmarks/bench_index.py [--articles 250] [--sentences 40] [--profile]

Corpus: the seed articles' real sentences shuffled into ``--articles`` articles (about 10
chunks each). Measured, in this order, with the model loaded and warmed up first:

  raw      Embedder.encode on every chunk text of the index (title + text, what build_index
           encodes), one call, the embedder's batch size (64): the encoder's ceiling
  build    build_index(..., force=True, analyze=False)
  build+a  build_index(..., force=True, analyze=True) (spaCy analysis + sentence vectors too)
  raw      again (the ceiling is the mean of both raw runs, so drift between runs shows)

Ratios are chunks/s of a build over chunks/s of raw. The "embedding stage" ratio uses only the
time build_index spends in its "embedding chunks" stage (from its progress callback); the
other stages (reading, chunking with the encoder's tokenizer, BM25, FAISS, writing) are listed.
``--profile`` prints the top of a cProfile of the analyze=False build.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, ROOT, machine, write_articles  # noqa: E402


class StageClock:
    """A build_index progress callback that adds up the wall time spent in each stage."""

    def __init__(self) -> None:
        self.stage = None
        self.t = time.perf_counter()
        self.times: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.stage is not None:
            self.times[self.stage] = self.times.get(self.stage, 0.0) + now - self.t
        self.stage, self.t = stage, now

    def finish(self) -> dict[str, float]:
        self("done", 0, 0)
        return self.times


def timed_build(docs: Path, index: Path, emb, analyze: bool, profile: bool = False):
    import rag

    clock = StageClock()
    prof = cProfile.Profile() if profile else None
    t = time.perf_counter()
    if prof:
        prof.enable()
    info = rag.build_index(docs, index, embedder=emb, force=True, analyze=analyze, progress=clock)
    if prof:
        prof.disable()
    wall = time.perf_counter() - t
    stages = clock.finish()
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
        print(s.getvalue())
    return info, wall, stages


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=250)
    ap.add_argument("--sentences", type=int, default=40)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "index.json"))
    a = ap.parse_args(argv)

    from rag.embedding import Embedder
    from rag.chunking import embed_text
    from rag.index import open_index

    print(machine())
    docs = write_articles(CACHE / f"docs-index-{a.articles}x{a.sentences}", a.articles, a.sentences, seed=42)
    index = CACHE / f"index-bench-{a.articles}x{a.sentences}"
    emb = Embedder()
    emb.encode(["warm up the model"] * 64)

    # The chunk texts build_index encodes (an analyze=False build first, untimed, to get them).
    import rag

    rag.build_index(docs, index, embedder=emb, analyze=False)
    texts = [embed_text(c) for c in open_index(index).chunks]
    n = len(texts)
    print(f"{a.articles} articles, {n:,} chunks (mean {statistics.mean(len(t) for t in texts):.0f} chars), "
          f"batch size {emb.batch_size}")

    def raw() -> float:
        t = time.perf_counter()
        emb.encode(texts)
        return time.perf_counter() - t

    raw1 = raw()
    info0, wall0, st0 = timed_build(docs, index, emb, analyze=False, profile=a.profile)
    info1, wall1, st1 = timed_build(docs, index, emb, analyze=True)
    raw2 = raw()
    assert info0.num_chunks == info1.num_chunks == n
    raw_s = (raw1 + raw2) / 2
    raw_rate = n / raw_s
    rows = [
        ("raw Embedder.encode (ceiling)", raw_s, raw_rate, 1.0),
        ("build_index analyze=False, embedding stage", st0.get("embedding chunks", float("nan")),
         n / st0.get("embedding chunks", float("nan")), n / st0.get("embedding chunks", float("nan")) / raw_rate),
        ("build_index analyze=False, whole build", wall0, n / wall0, n / wall0 / raw_rate),
        ("build_index analyze=True, embedding stage", st1.get("embedding chunks", float("nan")),
         n / st1.get("embedding chunks", float("nan")), n / st1.get("embedding chunks", float("nan")) / raw_rate),
        ("build_index analyze=True, whole build", wall1, n / wall1, n / wall1 / raw_rate),
    ]
    print(f"\nraw runs: {raw1:.1f} s and {raw2:.1f} s")
    print(f"{'':44s} {'seconds':>8s} {'chunks/s':>9s} {'ratio to raw':>13s}")
    for name, s, rate, ratio in rows:
        print(f"{name:44s} {s:8.1f} {rate:9.1f} {ratio:13.2f}")
    for label, st in (("analyze=False", st0), ("analyze=True", st1)):
        print(f"\nstages of the {label} build (s): " + ", ".join(f"{k} {v:.1f}" for k, v in st.items()))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"machine": machine(), "chunks": n, "raw_s": [raw1, raw2],
                                       "build_noanalysis_s": wall0, "stages_noanalysis": st0,
                                       "build_analysis_s": wall1, "stages_analysis": st1,
                                       "rows": [dict(zip(("name", "s", "chunks_per_s", "ratio"), r)) for r in rows]},
                                      indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
