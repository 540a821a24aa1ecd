"""Beyond one machine: the Milvus vector store (Milvus Lite here) and Ray Data indexing.

Real model, real Milvus Lite files, a real local Ray cluster (2 CPUs). CI installs the [scale]
extra (scripts/setup.sh --test), so nothing here is skipped.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import rag
from rag.index import versions
from rag.stores import faiss_store
from rag.chunking import ChunkerSettings
from rag.errors import ExtraMissingError, InputError, StoreError
from rag.index import open_index
from rag.stores.milvus_store import close_clients, parse_milvus_uri
from conftest import ROOT, SEEDS

QUESTIONS = [json.loads(l)["question"] for l in (ROOT / "evals" / "gold.jsonl").read_text().splitlines()[:40]]


@pytest.fixture(scope="module")
def milvus_seed_index(tmp_path_factory, embedder):
    d = tmp_path_factory.mktemp("milvus-seed")
    index = d / "index"
    rag.build_index(SEEDS, index, embedder=embedder, vector_store=f"milvus://{d / 'mv.db'}")
    yield index
    close_clients()


def test_store_uris_parse_and_never_keep_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("MILVUS_TOKEN", raising=False)
    lite = parse_milvus_uri(f"milvus://{tmp_path}/a.db")
    assert lite.lite and lite.public == f"milvus://{tmp_path}/a.db"
    srv = parse_milvus_uri("milvus://root:secret@db.example:19531")
    assert (srv.lite, srv.uri, srv.public, srv.token) == (False, "http://db.example:19531", "http://db.example:19531",
                                                          "root:secret")
    assert parse_milvus_uri("https://db.example").public == "https://db.example:19530"
    with pytest.raises(InputError, match=r"ending in \.db"):
        parse_milvus_uri(f"milvus://{tmp_path}/a.sqlite")
    with pytest.raises(InputError, match="does not exist"):
        parse_milvus_uri(f"milvus://{tmp_path}/nope/a.db")
    with pytest.raises(InputError, match="unknown vector store"):
        parse_milvus_uri("redis://x")


def test_milvus_lite_round_trip_matches_faiss_on_the_seeds(seed_index, milvus_seed_index, embedder):
    f, m = open_index(seed_index), open_index(milvus_seed_index)
    assert m.store.kind == "milvus" and f.store.kind == "faiss"
    entry = m.manifest["vector_store"]
    assert entry["kind"] == "milvus" and entry["index_type"] == "FLAT" and entry["collection"].startswith("rag_")
    assert "faiss" not in m.manifest and faiss_store.VECTORS not in m.manifest["files"]
    assert [(c.chunk_id, c.start, c.end) for c in f.chunks] == [(c.chunk_id, c.start, c.end) for c in m.chunks]
    assert m.store.count() == len(m.chunks)
    rows = list(range(len(m.chunks)))
    assert np.allclose(f.store.vectors(rows), m.store.vectors(rows), atol=1e-6)
    q = embedder.encode(QUESTIONS)
    fs, fr = f.store.search(q, 5)
    ms, mr = m.store.search(q, 5)
    assert (fr == mr).all() and np.allclose(fs, ms, atol=1e-5)  # both exact: identical rankings
    assert m.store.search_ids(q[:1], 3)[0][0][0] == f.chunks[int(fr[0, 0])].chunk_id


def test_load_search_and_ask_work_unchanged_on_milvus(milvus_seed_index, embedder):
    qa = rag.load(milvus_seed_index, embedder=embedder, reader="features")
    question = "Who heads Russia's Federal Service for Military and Technical Cooperation?"
    top = qa.retrieve(question, k=3)
    assert top[0].doc_id == "001_1040b1609e3dded8" and "Dmitry Shugayev" in top[0].text
    ans = qa.ask(question)
    src = (SEEDS / "001_1040b1609e3dded8.txt").read_text(encoding="utf-8")
    assert ans.text and src[ans.start:ans.end] == ans.text
    for p in ans.citations:
        assert (SEEDS / f"{p.doc_id}.txt").read_text(encoding="utf-8")[p.start:p.end] == p.text


def test_incremental_rebuild_keeps_store_and_drops_old_collections(seeds_copy, tmp_path, embedder):
    index, db = tmp_path / "index", tmp_path / "mv.db"
    rag.build_index(seeds_copy, index, embedder=embedder, vector_store=f"milvus://{db}")
    first = open_index(index).manifest["vector_store"]["collection"]
    (seeds_copy / "001_1040b1609e3dded8.txt").unlink()
    info = rag.build_index(seeds_copy, index, embedder=embedder)  # no store given: keeps Milvus
    assert info.rebuilt and info.encoded_chunks == 0
    second = open_index(index)
    assert second.store.kind == "milvus" and second.manifest["vector_store"]["collection"] != first
    (seeds_copy / "x.txt").write_text("A new title\n\nA short body about the S-400 deal and its price.\n")
    info = rag.build_index(seeds_copy, index, embedder=embedder)
    third = open_index(index)
    assert info.encoded_chunks == 1 and third.store.count() == len(third.chunks)
    client = second.store.client
    names = set(client.list_collections())
    # the live version's and the one before it survive; the first one was collected with its folder
    assert third.manifest["vector_store"]["collection"] in names
    assert second.manifest["vector_store"]["collection"] in names and first not in names
    n = third.store.delete_document("x")
    assert n == 1 and third.store.count() == len(third.chunks) - 1


def test_unreachable_milvus_is_a_clear_error_and_the_index_is_untouched(seeds_copy, tmp_path, fake_embedder):
    index = tmp_path / "index"
    rag.build_index(seeds_copy, index, embedder=fake_embedder)
    before = versions.current_version(index)
    t = time.time()
    with pytest.raises(StoreError, match=r"cannot reach Milvus at http://127\.0\.0\.1:9.*untouched"):
        rag.build_index(seeds_copy, index, embedder=fake_embedder, vector_store="milvus://127.0.0.1:9")
    assert time.time() - t < 60
    assert versions.current_version(index) == before
    loaded = open_index(index)
    assert loaded.store.kind == "faiss" and len(loaded.chunks) == loaded.vectors.ntotal


def test_collection_of_another_dimension_or_gone_is_refused(seeds_copy, tmp_path, fake_embedder):
    index, db = tmp_path / "index", tmp_path / "mv.db"
    rag.build_index(seeds_copy, index, embedder=fake_embedder, vector_store=f"milvus://{db}")
    live = open_index(index)
    name = live.manifest["vector_store"]["collection"]
    client = live.store.client
    client.drop_collection(name)
    with pytest.raises(StoreError, match="has no collection"):
        open_index(index)
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    client.create_collection(name, schema=schema)  # someone else's 8-d collection under our name
    with pytest.raises(StoreError, match="holds 8-d vectors but the index .* is 16-d"):
        open_index(index)
    # A rebuild repairs it: the broken version is replaced, the new collection is complete.
    rag.build_index(seeds_copy, index, embedder=fake_embedder, force=True)
    again = open_index(index)
    assert again.store.kind == "milvus" and again.store.count() == len(again.chunks)


def test_missing_extra_is_one_line_naming_it(seeds_copy, tmp_path):
    code = ("import sys; sys.modules['pymilvus'] = None; sys.modules['ray'] = None\n"
            "from rag.cli import main; sys.exit(main(sys.argv[1:]))")
    for extra_args in (["--store", f"milvus://{tmp_path}/x.db"], ["--ray"]):
        r = subprocess.run([sys.executable, "-c", code, "index", str(seeds_copy), "--index", str(tmp_path / "i"),
                            *extra_args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
        assert len(lines) == 1 and "[scale]" in lines[0] and "pip install" in lines[0], r.stderr
        assert not (tmp_path / "i").exists()
    with pytest.raises(ExtraMissingError):
        from rag.errors import need_extra

        need_extra("surely_not_installed_module", "x")


# --- Ray ---------------------------------------------------------------------------------------

def _synthetic_corpus(folder, n_docs=105, sentences=14):
    """Short articles of short sentences: with 8-token chunks, ~20 chunks per article (~2,000).

    The title line has three words, so the reader keeps it as the title (a shorter first line is
    taken for preamble, and the first paragraph becomes a 190-character title embedded with every
    chunk: 7x the encoding for the same test).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    cities = ["Ankara", "Moscow", "Kazan", "Izmir", "Tula", "Sochi", "Bursa", "Omsk"]
    things = ["radar", "launcher", "battery", "contract", "missile", "convoy", "factory", "crew"]
    for d in range(n_docs):
        body = [f"{cities[rng.integers(8)]} {things[rng.integers(8)]} {d * 100 + s} passed."
                for s in range(sentences)]
        text = f"Field report {d}\n\n" + " ".join(body[: sentences // 2]) + "\n\n" + " ".join(body[sentences // 2:]) + "\n"
        (folder / f"r{d:04d}.txt").write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def ray_cluster():
    from rag.index import distributed

    yield distributed.RayOptions(num_cpus=2, embed_workers=1, batch_size=256)
    distributed.shutdown()


def test_ray_indexing_into_milvus_equals_single_process(tmp_path, embedder, ray_cluster):
    docs = tmp_path / "docs"
    _synthetic_corpus(docs)
    chunker = ChunkerSettings(max_tokens=8, overlap_tokens=0)
    single = rag.build_index(docs, tmp_path / "single", embedder=embedder, chunker=chunker, analyze=False)
    assert single.num_chunks >= 2000  # "a few thousand chunks"
    dist = rag.build_index(docs, tmp_path / "ray", embedder=embedder, chunker=chunker, analyze=False,
                           vector_store=f"milvus://{tmp_path / 'mv.db'}", ray=ray_cluster)
    assert (dist.num_chunks, dist.encoded_chunks) == (single.num_chunks, single.num_chunks)
    a, b = open_index(tmp_path / "single"), open_index(tmp_path / "ray")
    assert b.manifest["built_with"]["ray"] is True and b.store.kind == "milvus"
    assert [c.to_dict() for c in a.chunks] == [c.to_dict() for c in b.chunks]
    assert a.manifest["documents"].keys() == b.manifest["documents"].keys()
    assert all(a.manifest["documents"][k]["content_hash"] == v["content_hash"]
               for k, v in b.manifest["documents"].items())
    rows = list(range(0, len(a.chunks), 97))
    assert np.allclose(a.store.vectors(rows), b.store.vectors(rows), atol=1e-5)
    q = embedder.encode(["Kazan radar passed", "the convoy 4507", "Tula factory"])
    for ra, rb in zip(a.store.search_ids(q, 20), b.store.search_ids(q, 20)):
        # Same scores rank by rank; the same chunks, up to the order of exact ties (the synthetic
        # sentences score alike, and FAISS and Milvus break ties differently).
        assert np.allclose([s for _, s in ra], [s for _, s in rb], atol=1e-5)
        in_b = dict(rb)
        assert all(c in in_b and abs(in_b[c] - sc) < 1e-5 for c, sc in ra[:10] if sc > ra[-1][1] + 1e-5)
    # Incremental on Ray: one changed file, one deleted -> only the changed one is encoded.
    (docs / "r0003.txt").write_text("A changed report\n\nOfficials in Omsk said the crew passed every test.\n",
                                    encoding="utf-8")
    (docs / "r0004.txt").unlink()
    again = rag.build_index(docs, tmp_path / "ray", embedder=embedder, chunker=chunker, analyze=False, ray=ray_cluster)
    c = open_index(tmp_path / "ray")
    changed = [x for x in c.chunks if x.doc_id == "r0003"]
    assert again.rebuilt and changed and again.encoded_chunks == len(changed)
    assert not any(x.doc_id == "r0004" for x in c.chunks) and c.store.count() == len(c.chunks)


def test_interrupted_ray_build_leaves_the_previous_index_loadable(seeds_copy, tmp_path, embedder):
    index = tmp_path / "index"
    rag.build_index(seeds_copy, index, embedder=embedder)
    before = versions.current_version(index)
    docs = tmp_path / "docs2"
    _synthetic_corpus(docs, n_docs=600)  # ~600 chunks: far more than 3 s of embedding
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "rag.cli", "index", str(docs), "--index", str(index), "--ray"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.time() + 240
    seen = ""
    while time.time() < deadline and "on Ray" not in seen:
        ready, _, _ = select.select([p.stdout], [], [], 1.0)
        if ready:
            data = os.read(p.stdout.fileno(), 65536)
            if not data:
                break
            seen += data.decode("utf-8", "replace")
    time.sleep(2)  # mid-way: actors are starting, chunking or embedding
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    assert "on Ray" in seen, seen[-2000:]
    assert versions.current_version(index) == before
    loaded = rag.load(index, embedder=embedder)
    assert {c.doc_id for c in loaded.index.chunks} == {p.stem for p in seeds_copy.glob("*.txt")}
    assert loaded.retrieve("S-400", k=1)
    # and the next build (the lock of the killed one is free) completes normally
    info = rag.build_index(seeds_copy, index, embedder=embedder, force=True)
    assert info.rebuilt


def test_eval_reports_faiss_and_milvus_side_by_side(seed_index, tmp_path, embedder):
    from rag.eval.runner import run_gold_eval

    out = tmp_path / "report"
    report = run_gold_eval(ROOT / "evals" / "gold.jsonl", seed_index, SEEDS, out, split="dev",
                           modes=("dense", "hybrid"), readers=(), embedder=embedder, progress=False,
                           compare_store=f"milvus://{tmp_path / 'gold.db'}")
    sc = report["store_comparison"]
    assert sc["stores"][0] == "faiss" and sc["stores"][1].startswith("milvus://")
    for mode in ("dense", "hybrid"):
        assert sc["modes"][mode]["a"] == sc["modes"][mode]["b"]  # exact on both: identical figures
        assert sc["modes"][mode]["identical_top10"] == 1.0
        assert sc["modes"][mode]["a"]["doc"] == report["retrieval"][mode]["doc"]
    md = (out / "report.md").read_text()
    assert "## Retrieval by vector store" in md and "milvus://" in md
    close_clients()
