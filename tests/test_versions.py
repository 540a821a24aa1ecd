import json

import pytest

import rag
from rag.index import versions
from rag.stores import faiss_store
from rag.index import open_index
from conftest import FakeEmbedder, SEEDS, kill_build_when_ready


def test_round_trip_and_incremental(seeds_copy, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    info = rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    assert info.rebuilt and info.num_documents == 5 and info.encoded_chunks == info.num_chunks
    loaded = open_index(idx)
    assert len(loaded.chunks) == info.num_chunks == loaded.vectors.ntotal
    m = loaded.manifest
    assert m["format_version"] == versions.FORMAT_VERSION and m["model"] == "fake-bow" and m["dimension"] == 16
    assert set(m["documents"]) == {p.stem for p in SEEDS.glob("*.txt")}
    # Nothing changed: nothing encoded, nothing written.
    before = (idx / "CURRENT").read_text()
    again = rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    assert not again.rebuilt and again.encoded_chunks == 0 and (idx / "CURRENT").read_text() == before
    # One article changed, one deleted, one added: only the changed and new are encoded.
    p = seeds_copy / "000_58e3d6b70d3dc322.txt"
    p.write_text(p.read_text(encoding="utf-8").replace("about $2 billion", "about $3 billion"), encoding="utf-8")
    (seeds_copy / "004_6bcff8eae5855749.txt").unlink()
    (seeds_copy / "new.txt").write_text("A brand new headline here\nA new body sentence about radars.\n", encoding="utf-8")
    assert any("changed" in r for r in open_index(idx).stale())
    third = rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    now = open_index(idx)
    assert third.rebuilt and third.num_documents == 5
    n_changed = sum(1 for c in now.chunks if c.doc_id in ("000_58e3d6b70d3dc322", "new"))
    assert third.encoded_chunks == n_changed
    assert not any(c.doc_id == "004_6bcff8eae5855749" for c in now.chunks)
    assert now.stale() == []
    # Vectors of unchanged chunks were carried over exactly.
    qa = rag.load(idx, embedder=fake_embedder)
    hits = qa.retrieve("Shugayev", k=1, mode="bm25")
    assert hits[0].doc_id == "001_1040b1609e3dded8"


def test_model_and_dimension_mismatch_refused(seeds_copy, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    with pytest.raises(rag.IndexMismatchError, match="rebuild it with `rag index"):
        rag.load(idx, embedder=FakeEmbedder(model_id="other-model"))
    qa = rag.load(idx, embedder=FakeEmbedder(dimension=8))  # same id, other dimension
    with pytest.raises(rag.IndexMismatchError, match="8-d vectors .* 16-d"):
        qa.retrieve("Who heads the service?", mode="dense")


def test_newer_format_truncated_and_edited_files_refused(seeds_copy, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    version = versions.current_version(idx)
    vec = version / faiss_store.VECTORS
    data = vec.read_bytes()
    vec.write_bytes(data[: len(data) // 2])
    with pytest.raises(rag.IndexCorruptError, match="truncated"):
        rag.load(idx, embedder=fake_embedder)
    vec.write_bytes(data)
    chunks = version / versions.CHUNKS
    text = chunks.read_text(encoding="utf-8")
    chunks.write_text(text.replace("Shugayev", "Shugayov"), encoding="utf-8")
    with pytest.raises(rag.IndexCorruptError, match="changed after the build"):
        rag.load(idx, embedder=fake_embedder)
    chunks.write_text(text, encoding="utf-8")
    m = json.loads((version / versions.MANIFEST).read_text())
    m["format_version"] = versions.FORMAT_VERSION + 1
    (version / versions.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(rag.IndexMismatchError, match="newer than this rag reads"):
        rag.load(idx, embedder=fake_embedder)


def test_missing_index_message(tmp_path):
    with pytest.raises(rag.IndexNotFoundError, match="rag index DOCS --index"):
        rag.load(tmp_path / "none")


_KILL_SCRIPT = r"""
import sys, time, rag
from rag.index import versions
from rag.stores import faiss_store
sys.path.insert(0, {tests!r})
from conftest import FakeEmbedder
stage = sys.argv[1]
orig_write = versions.write_version
real_replace = versions.os.replace
def slow_write_faiss(index):
    inner = orig_faiss(index)
    def write(path):
        inner(path)
        if stage == "files":
            print("READY", flush=True); time.sleep(60)
    return write
orig_faiss = faiss_store.write_faiss
faiss_store.write_faiss = slow_write_faiss
def slow_replace(a, b):
    if stage == "pointer":
        print("READY", flush=True); time.sleep(60)
    return real_replace(a, b)
versions.os.replace = slow_replace
emb = FakeEmbedder()
if stage == "embed":
    enc = emb.encode
    def slow(texts, show_progress=False):
        print("READY", flush=True); time.sleep(60)
    emb.encode = slow
rag.build_index(sys.argv[2], sys.argv[3], embedder=emb, force=True)
"""


@pytest.mark.parametrize("stage", ["embed", "files", "pointer"])
def test_killed_build_leaves_old_index_loadable(stage, seeds_copy, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    before = [c.to_dict() for c in open_index(idx).chunks]
    (seeds_copy / "000_58e3d6b70d3dc322.txt").write_text("Changed headline for the test\nNew body.\n",
                                                         encoding="utf-8")
    kill_build_when_ready(_KILL_SCRIPT, tmp_path, stage, seeds_copy, idx)
    loaded = open_index(idx)
    assert [c.to_dict() for c in loaded.chunks] == before
    assert rag.load(idx, embedder=fake_embedder).retrieve("Shugayev", k=1, mode="bm25")[0].doc_id.startswith("001")
    # The next build cleans up what the killed one left and succeeds.
    info = rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    assert info.rebuilt
    assert not [p for p in idx.iterdir() if p.name.startswith(".tmp-")]
