"""Print the figures of benchmarks/results/*.json as the Markdown tables of benchmarks/README.md.

    python benchmarks/summarize.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

RES = Path(__file__).resolve().parent / "results"


def load(name: str):
    p = RES / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def main() -> int:
    for name in ("ann", "latency", "index", "coldstart"):
        r = load(name)
        if r:
            print(f"<!-- {name}: {r['machine']} -->")
    r = load("index")
    if r:
        print("\n### Indexing throughput (bench_index.py)\n")
        print(f"{r['chunks']:,} chunks; raw encode runs {r['raw_s'][0]:.1f} s / {r['raw_s'][1]:.1f} s\n")
        print("| measurement | seconds | chunks/s | ratio to raw encode |\n|---|---:|---:|---:|")
        for row in r["rows"]:
            print(f"| {row['name']} | {row['s']:.1f} | {row['chunks_per_s']:.1f} | **{row['ratio']:.2f}** |")
        for label, key in (("analyze=False", "stages_noanalysis"), ("analyze=True", "stages_analysis")):
            print(f"\nStages, {label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in r[key].items()))
    r = load("latency")
    if r:
        print("\n### Warm latency and memory (bench_latency.py)\n")
        print("| corpus | chunks | FAISS | load s | floor p50/p95 ms | retrieve dense p50/p95 (x floor) | "
              "retrieve hybrid p50/p95 (x floor) | ask p50/p95 (x floor) | RSS total / anon / file MB |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for x in r["results"]:
            f = lambda k: f"{x[k]['p50_ms']:.1f} / {x[k]['p95_ms']:.1f} (**x{x[k]['ratio']:.2f}**)"  # noqa: E731
            rss = x["rss_after_mb"]
            print(f"| {x['size']} | {x['chunks']:,} | {x['faiss'].get('type', 'flat')} | {x['load_s']:.2f} | "
                  f"{x['floor']['p50_ms']:.1f} / {x['floor']['p95_ms']:.1f} | {f('retrieve_dense')} | "
                  f"{f('retrieve_hybrid')} | {f('ask')} | {rss['VmRSS']:.0f} / {rss['RssAnon']:.0f} / {rss['RssFile']:.0f} |")
    r = load("ann")
    if r:
        print("\n### HNSW vs exact (bench_ann.py)\n")
        print("| data | vectors | HNSW build s | exact p50 ms | efSearch | recall@10 | recall@1 | HNSW p50 ms | "
              "HNSW / exact time |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in r["results"]:
            for s in x["sweep"]:
                mark = " (chosen)" if s["efSearch"] == x["chosen_efSearch"] else ""
                print(f"| {x['data']} | {x['n']:,} | {x['build_s']:.0f} | {x['exact_p50_ms']:.2f} | "
                      f"{s['efSearch']}{mark} | {s['recall@10']:.3f} | {s['recall@1']:.3f} | {s['p50_ms']:.2f} | "
                      f"{s['ratio']:.3f} |")
        if "encode_p50_ms" in r:
            print(f"\nOne question encode p50 {r['encode_p50_ms']:.2f} ms; exact search "
                  f"{r['exact_ms_per_vector'] * 1e6:.1f} ms per million vectors -> equal at "
                  f"~{r['crossover_vectors']:,.0f} vectors.")
    r = load("coldstart")
    if r:
        import statistics

        print("\n### Cold start (bench_coldstart.py)\n")
        print(f"| `rag ask Q --index seed` median s | import sentence_transformers + load model median s | ratio |\n"
              f"|---:|---:|---:|\n| {statistics.median(r['ask_s']):.2f} | {statistics.median(r['model_s']):.2f} | "
              f"**{r['ratio']:.2f}** |")
        print("\nStart-up steps of one `rag ask` (s): " +
              ", ".join(f"{k} {v:.2f}" for k, v in r["breakdown_steps_s"].items()))
        print(f"\n`rag --help` {r['help_s']:.2f} s; `python -c 'import rag'` {r['import_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
