"""Retrieval recall on the gold set for several chunk sizes and overlaps (how the chunker defaults were chosen).

    python benchmarks/chunk_sweep.py [dev|test|all]
"""
import json, sys, tempfile
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[1]))
import rag
from rag.chunking import ChunkerSettings
from rag.embedding import Embedder
from rag.eval.metrics import normalize_answer
emb = Embedder()
gold = [json.loads(l) for l in open(str(__import__('pathlib').Path(__file__).resolve().parents[1] / 'evals' / 'gold.jsonl'))]
split = sys.argv[1] if len(sys.argv) > 1 else 'dev'
qs = [g for g in gold if g['answerable'] and (split == 'all' or g['split'] == split)]
def contains(text, answers):
    t = normalize_answer(text)
    return any(normalize_answer(a) and normalize_answer(a) in t for a in answers)
for mt, ov in [(48, 12), (64, 16), (96, 24), (128, 32), (160, 40), (192, 48), (256, 64), (128, 0), (128, 64)]:
    with tempfile.TemporaryDirectory() as d:
        info = rag.build_index(str(__import__('pathlib').Path(__file__).resolve().parents[1] / 'seeds'), d, embedder=emb, chunker=ChunkerSettings(mt, ov))
        qa = rag.load(d, embedder=emb)
        row = [f"{mt:4d}/{ov:<3d} n={info.num_chunks:3d}"]
        for mode in ('dense', 'bm25', 'hybrid'):
            h1 = h5 = mrr = p1 = p5 = 0
            for g in qs:
                hits = qa.retrieve(g['question'], k=10, mode=mode)
                docs = [h.doc_id for h in hits]
                rel = [h.doc_id in g['doc_ids'] and contains(h.text, g['answers']) for h in hits]
                h1 += docs[0] in g['doc_ids'] if docs else 0
                h5 += any(x in g['doc_ids'] for x in docs[:5])
                p1 += rel[0] if rel else 0
                p5 += any(rel[:5])
                mrr += next((1 / (i + 1) for i, r in enumerate(rel) if r), 0)
            n = len(qs)
            row.append(f"{mode}: d@1 {h1/n:.2f} d@5 {h5/n:.2f} p@1 {p1/n:.2f} p@5 {p5/n:.2f} pMRR {mrr/n:.2f}")
        print(" | ".join(row), flush=True)
