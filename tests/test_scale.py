"""Scale: the lazy chunk table, the exact/HNSW switch, memory-mapped loading, light imports,
batched question encoding and incremental indexing (FakeEmbedder: no model needed)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import rag
from rag.index import versions
from rag.stores import base as stores_base
from rag.chunking import embed_text
from rag.index import open_index
from rag.stores.faiss_store import ANN_THRESHOLD, HNSW_SPEC, faiss_spec
from rag.schema import Chunk
from conftest import FakeEmbedder, ROOT


def _chunks(n: int) -> list[Chunk]:
    out = []
    for i in range(n):
        text = f"Chunk {i}: Шугаев said «{i * 7}» \u2014 naïve café {'x' * (i % 5)}"
        out.append(Chunk(chunk_id=f"d{i // 3}:{i % 3}", doc_id=f"d{i // 3}", n=i % 3, start=10 * i,
                         end=10 * i + len(text), text=text, title=f"Title {i // 3}", tokens=len(text.split())))
    return out


def _write_table(folder, chunks, offsets=True):
    folder.mkdir(parents=True, exist_ok=True)
    versions.write_jsonl([c.to_dict() for c in chunks])(folder / versions.CHUNKS)
    if offsets:
        versions.write_line_offsets(versions.CHUNKS)(folder / versions.CHUNK_OFFSETS)


# --- the lazy chunk table ------------------------------------------------------------------------

@pytest.mark.parametrize("with_offsets", [True, False])
def test_chunk_table_round_trip_random_access_iteration_size(tmp_path, with_offsets):
    chunks = _chunks(50)
    _write_table(tmp_path / "v", chunks, offsets=with_offsets)
    table = versions.open_chunks(tmp_path / "v")
    assert isinstance(table, versions.ChunkTable)
    assert len(table) == 50
    assert list(table) == chunks  # iteration, in order, unicode intact
    rng = np.random.default_rng(0)
    for row in rng.integers(0, 50, 200):
        assert table[row] == chunks[int(row)]  # numpy integers too
    assert table[-1] == chunks[-1] and table[3:7] == chunks[3:7] and table[::-10] == chunks[::-10]
    assert chunks[17] in table
    with pytest.raises(IndexError):
        table[50]
    with pytest.raises(IndexError):
        table[-51]
    assert versions.read_chunks(tmp_path / "v") == chunks


def test_chunk_table_cache_is_bounded_and_empty_table_works(tmp_path):
    chunks = _chunks(40)
    _write_table(tmp_path / "v", chunks)
    table = versions.ChunkTable(tmp_path / "v" / versions.CHUNKS, cache_rows=5)
    for i in range(40):
        assert table[i] == chunks[i]
    assert len(table._cache) == 5
    assert table[39] is table[39]  # served from the cache
    _write_table(tmp_path / "e", [])
    empty = versions.open_chunks(tmp_path / "e")
    assert len(empty) == 0 and list(empty) == []


def test_chunk_table_refuses_offsets_that_do_not_match(tmp_path):
    _write_table(tmp_path / "v", _chunks(10))
    np.save(tmp_path / "v" / versions.CHUNK_OFFSETS, np.arange(11, dtype=np.int64), allow_pickle=False)
    with pytest.raises(rag.IndexCorruptError, match="does not match"):
        versions.open_chunks(tmp_path / "v")


def test_open_index_reads_chunks_lazily_with_the_list_api(seeds_copy, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder, analyze=False)
    loaded = open_index(idx)
    assert isinstance(loaded.chunks, versions.ChunkTable)
    assert versions.CHUNK_OFFSETS in loaded.manifest["files"]
    rows = versions.read_jsonl(loaded.version / versions.CHUNKS)
    assert [c.to_dict() for c in loaded.chunks] == rows
    assert len(loaded.chunks) == loaded.vectors.ntotal == loaded.manifest["num_chunks"]
    for i in (0, len(rows) // 2, len(rows) - 1):
        assert loaded.row(rows[i]["chunk_id"]) == i and loaded.chunks[i].chunk_id == rows[i]["chunk_id"]


def test_index_written_before_the_offsets_file_still_loads(seeds_copy, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder, analyze=False)
    version = versions.current_version(idx)
    (version / versions.CHUNK_OFFSETS).unlink()
    m = json.loads((version / versions.MANIFEST).read_text())
    del m["files"][versions.CHUNK_OFFSETS]
    (version / versions.MANIFEST).write_text(json.dumps(m))
    qa = rag.load(idx, embedder=fake_embedder)
    assert len(qa.index.chunks) == m["num_chunks"]
    assert qa.retrieve("Shugayev", k=1, mode="bm25")[0].doc_id == "001_1040b1609e3dded8"


# --- exact below the threshold, HNSW above ---------------------------------------------------------

def test_faiss_spec_switches_at_the_measured_threshold():
    assert faiss_spec(ANN_THRESHOLD - 1) == {"type": "flat"}
    assert faiss_spec(ANN_THRESHOLD) == HNSW_SPEC and faiss_spec(ANN_THRESHOLD) is not HNSW_SPEC
    assert faiss_spec(10, ann_threshold=5)["type"] == "hnsw"


def test_tiny_ann_threshold_builds_hnsw_and_search_still_finds_top1(seeds_copy, tmp_path, fake_embedder):
    import faiss

    idx = tmp_path / "idx"
    info = rag.build_index(seeds_copy, idx, embedder=fake_embedder, ann_threshold=5, analyze=False)
    loaded = open_index(idx)
    spec = loaded.manifest["faiss"]
    assert spec["type"] == "hnsw" and spec["M"] == HNSW_SPEC["M"] and spec["efSearch"] == HNSW_SPEC["efSearch"]
    assert isinstance(loaded.vectors, faiss.IndexHNSWFlat) and loaded.vectors.hnsw.efSearch == spec["efSearch"]
    qa = rag.load(idx, embedder=fake_embedder)
    vecs = fake_embedder.encode([embed_text(c) for c in loaded.chunks])
    for row in range(info.num_chunks):
        top = qa.retriever.search("unused", k=1, mode="dense", qvec=vecs[row])[0]
        assert np.allclose(vecs[loaded.row(top.chunk_id)], vecs[row])  # itself (or an identical vector)
        assert top.score == pytest.approx(1.0, abs=1e-5)


# --- memory-mapped loading -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_large_indexes_load_memory_mapped(kind, seeds_copy, tmp_path, fake_embedder, monkeypatch):
    import faiss

    idx = tmp_path / "idx"
    threshold = 5 if kind == "hnsw" else ANN_THRESHOLD
    rag.build_index(seeds_copy, idx, embedder=fake_embedder, analyze=False, ann_threshold=threshold)
    plain = rag.load(idx, embedder=fake_embedder)
    flags_seen = []
    real_read = faiss.read_index

    def spy(path, flags=0):
        flags_seen.append(flags)
        return real_read(path, flags)

    monkeypatch.setattr(faiss, "read_index", spy)
    monkeypatch.setattr(stores_base, "MMAP_MIN_BYTES", 0)  # every file counts as large
    mapped = rag.load(idx, embedder=fake_embedder)
    mmap_flag = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
    assert flags_seen and flags_seen[-1] & mmap_flag
    assert mapped.index.manifest["faiss"]["type"] == kind
    if kind == "hnsw":  # faiss >= 1.10 maps HNSW's flat storage too; efSearch still applies
        assert mapped.index.vectors.hnsw.efSearch == HNSW_SPEC["efSearch"]
    assert isinstance(mapped.index.lexical._bm25.scores["data"], np.memmap)
    for q in ("Who heads the Federal Service?", "S-400 deal worth", "radars"):
        for mode in ("dense", "bm25", "hybrid"):
            assert mapped.retrieve(q, mode=mode) == plain.retrieve(q, mode=mode)
    # Two later builds remove the mapped version's files: what was loaded stays readable, whole.
    before = [c.to_dict() for c in mapped.index.chunks]
    for text in ("First replacement\nBody one.\n", "Second replacement\nBody two.\n"):
        (seeds_copy / "000_58e3d6b70d3dc322.txt").write_text(text, encoding="utf-8")
        rag.build_index(seeds_copy, idx, embedder=fake_embedder, analyze=False, ann_threshold=threshold)
    assert not mapped.index.version.exists()
    assert [c.to_dict() for c in mapped.index.chunks] == before
    assert mapped.retrieve("Shugayev", k=1, mode="hybrid")[0].doc_id == "001_1040b1609e3dded8"


def test_small_indexes_are_read_into_memory(seeds_copy, tmp_path, fake_embedder, monkeypatch):
    import faiss

    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder, analyze=False)
    flags_seen = []
    real_read = faiss.read_index
    monkeypatch.setattr(faiss, "read_index", lambda p, f=0: flags_seen.append(f) or real_read(p, f))
    loaded = open_index(idx)
    assert flags_seen == [0] and not isinstance(loaded.lexical._bm25.scores["data"], np.memmap)


# --- start-up --------------------------------------------------------------------------------------

def test_import_rag_loads_no_heavy_module():
    code = ("import rag, sys; print(sorted(m for m in ('torch','sentence_transformers','transformers','faiss',"
            "'spacy','gradio','matplotlib','bm25s') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_loads_no_heavy_module():
    code = ("import sys; from rag.cli import _parser; _parser().format_help(); import rag.cli; "
            "print(sorted(m for m in ('torch','sentence_transformers','transformers','faiss','spacy','gradio',"
            "'matplotlib','bm25s','tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# --- batching --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_search_many_encodes_all_questions_in_one_call(seeds_copy, tmp_path, mode):
    idx = tmp_path / "idx"
    emb = FakeEmbedder()
    rag.build_index(seeds_copy, idx, embedder=emb, analyze=False)
    qa = rag.load(idx, embedder=emb)
    questions = [f"Who heads the service {i}?" for i in range(25)]
    emb.calls = emb.encoded = 0
    hits = qa.retriever.search_many(questions, k=3, mode=mode)
    assert emb.calls == 1 and emb.encoded == 25
    assert len(hits) == 25 and all(len(h) == 3 for h in hits)
    assert hits[7] == qa.retriever.search(questions[7], k=3, mode=mode)


# --- incremental indexing --------------------------------------------------------------------------

def test_incremental_build_encodes_only_new_and_changed_articles(seeds_copy, tmp_path):
    idx = tmp_path / "idx"
    emb = FakeEmbedder()
    first = rag.build_index(seeds_copy, idx, embedder=emb, analyze=False)
    assert emb.encoded == first.num_chunks == first.encoded_chunks
    old = open_index(idx)
    old_chunks = {c.chunk_id: c for c in old.chunks}
    old_vecs = {c.chunk_id: old.vectors.reconstruct(i) for i, c in enumerate(old.chunks)}

    # Nothing changed: no encode call at all, nothing written, and it says so.
    emb.calls = emb.encoded = 0
    pointer = (idx / "CURRENT").read_text()
    again = rag.build_index(seeds_copy, idx, embedder=emb, analyze=False)
    assert emb.calls == 0 and emb.encoded == 0
    assert not again.rebuilt and again.encoded_chunks == 0 and (idx / "CURRENT").read_text() == pointer

    changed, deleted = "000_58e3d6b70d3dc322", "004_6bcff8eae5855749"
    p = seeds_copy / f"{changed}.txt"
    p.write_text(p.read_text(encoding="utf-8").replace("about $2 billion", "about $3 billion"), encoding="utf-8")
    (seeds_copy / f"{deleted}.txt").unlink()
    (seeds_copy / "new.txt").write_text("A brand new headline here\nA new body sentence about radars.\n",
                                        encoding="utf-8")
    third = rag.build_index(seeds_copy, idx, embedder=emb, analyze=False)
    now = open_index(idx)
    fresh = [c for c in now.chunks if c.doc_id in (changed, "new")]
    assert third.rebuilt and emb.encoded == third.encoded_chunks == len(fresh) > 0
    assert not any(c.doc_id == deleted for c in now.chunks)
    kept = [c for c in now.chunks if c.doc_id not in (changed, "new")]
    assert kept and {c.doc_id for c in kept} == {c.doc_id for c in old_chunks.values()} - {changed, deleted}
    for c in kept:  # unchanged articles: the same chunk ids, rows' content and vectors, bit for bit
        assert c == old_chunks[c.chunk_id]
        assert np.array_equal(now.vectors.reconstruct(now.row(c.chunk_id)), old_vecs[c.chunk_id])
    assert now.stale() == []
