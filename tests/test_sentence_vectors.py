"""Sentence vectors and spaCy analyses at index time: the parse runs in a worker beside the encoder."""
import numpy as np

import rag
from rag.index import build as indexing
from rag.analysis import AnalysisJob, analyze_documents
from rag.documents import load_documents
from rag.index import open_index


def test_build_stores_each_sentence_encoded_on_its_own(seeds_copy, tmp_path, embedder):
    rag.build_index(seeds_copy, tmp_path / "idx", embedder=embedder)
    idx = open_index(tmp_path / "idx")
    sents = [s for doc_id in idx.documents for s in idx.sentences(doc_id)]
    svecs = idx.sentence_vectors()
    assert len(sents) == len(svecs) > 50 and sorted(s.row for s in sents) == list(range(len(svecs)))
    # Row by row what the encoder gives for the sentence alone (the feature reader was fitted on that).
    alone = embedder.encode([s.text for s in sents])
    assert np.allclose(svecs[[s.row for s in sents]], alone, atol=1e-4)


def test_worker_analysis_is_used_in_a_build(seeds_copy, tmp_path, fake_embedder, monkeypatch):
    started = []
    real = indexing.start_analysis

    def spy(documents, background=None):
        job = real(documents, background=True)  # the seeds are small: force the worker
        started.append(job)
        return job

    monkeypatch.setattr(indexing, "start_analysis", spy)
    rag.build_index(seeds_copy, tmp_path / "idx", embedder=fake_embedder)
    assert len(started) == 1 and len(started[0].documents) == 5 and started[0]._proc is None  # closed
    in_process = analyze_documents(load_documents(seeds_copy)[0])
    idx = open_index(tmp_path / "idx")
    assert {d: [{k: v for k, v in r.items() if k != "row"} for r in rows]
            for d, rows in idx.analysis_rows().items()} == in_process


def test_background_analysis_equals_in_process():
    docs, _ = load_documents("seeds")
    docs = docs[:2]
    job = AnalysisJob(docs, background=True)
    try:
        assert job.result() == analyze_documents(docs)
    finally:
        job.close()
    assert job._proc is None and not job.running
    small = AnalysisJob(docs)  # small jobs run here, when asked for
    assert small._proc is None and small.result() == analyze_documents(docs)


def test_encoder_leaves_a_core_to_the_worker_and_takes_it_back():
    import torch

    before = torch.get_num_threads()
    with indexing._cores_shared(True):
        assert torch.get_num_threads() == max(1, before - 1)
    assert torch.get_num_threads() == before
    with indexing._cores_shared(False):
        assert torch.get_num_threads() == before


def test_worker_builds_from_a_script_without_a_main_guard(tmp_path):
    """The worker is its own interpreter: a caller's unguarded script (or stdin) is not re-run."""
    import subprocess
    import sys

    from conftest import ROOT, SEEDS

    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
            "import rag\nfrom rag.index import build as indexing\nfrom conftest import FakeEmbedder\n"
            "real = indexing.start_analysis\n"
            "indexing.start_analysis = lambda docs, background=None: real(docs, background=True)\n"
            f"info = rag.build_index({str(SEEDS)!r}, {str(tmp_path / 'idx')!r}, embedder=FakeEmbedder())\n"
            "print('BUILT', info.num_documents)\n")
    out = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("BUILT") == 1 and "BUILT 5" in out.stdout
    assert open_index(tmp_path / "idx").has_analysis


def test_failed_worker_says_what_to_do(monkeypatch, tmp_path):
    import sys

    import pytest

    from rag.errors import ModelError

    broken = tmp_path / "python"
    broken.write_text('#!/bin/sh\necho "OSError: [E050] Cannot find model" >&2\nexit 3\n')
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    docs, _ = load_documents("seeds")
    job = AnalysisJob(docs[:1], background=True)
    folder = job._dir
    with pytest.raises(ModelError, match=r"analysis worker failed \(exit 3\): OSError: \[E050\].*setup.sh"):
        job.result()
    job.close()
    assert job._dir is None and not folder.exists()


def test_build_whose_worker_fails_keeps_the_live_index(monkeypatch, tmp_path, seeds_copy, fake_embedder):
    import sys

    import pytest

    from rag.errors import ModelError

    idx = tmp_path / "idx"
    rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    before = open_index(idx)
    live = (before.version.name, before.analysis_rows())
    (seeds_copy / "000_58e3d6b70d3dc322.txt").write_text("A changed headline for this test\nFrigates.\n")
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    real = indexing.start_analysis
    monkeypatch.setattr(indexing, "start_analysis", lambda docs, background=None: real(docs, background=True))
    with pytest.raises(ModelError, match="analysis worker failed"):
        rag.build_index(seeds_copy, idx, embedder=fake_embedder)
    now = open_index(idx)
    assert (now.version.name, now.analysis_rows()) == live
    monkeypatch.undo()
    assert rag.build_index(seeds_copy, idx, embedder=fake_embedder).rebuilt  # the lock was released


def test_worker_imports_the_same_package_as_the_caller(monkeypatch):
    import subprocess
    from pathlib import Path

    seen = {}

    class Recorder:
        def __init__(self, args, **kw):
            seen.update(kw, args=args)

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    docs, _ = load_documents("seeds")
    job = AnalysisJob(docs[:1], background=True)
    job.close()
    root = str(Path(rag.__file__).resolve().parents[1])
    assert seen["env"]["PYTHONPATH"].split(":") == [root, "/somewhere/else"]
    assert seen["args"][1:3] == ["-m", "rag.analysis_worker"]
