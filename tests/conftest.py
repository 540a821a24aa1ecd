"""Shared fixtures: the seed corpus, a real index built once per session, and a fake embedder."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
CHROME_WORDS = ("More from", "CV90", "Leopard", "Oshkosh", "DroneShield", "Related Equipment", "Volvo",
                "Malaysia", "What you need to know")


class FakeEmbedder:
    """Bag-of-words hashing vectors: scores can be worked out by hand, no model needed."""

    def __init__(self, dimension: int = 16, model_id: str = "fake-bow", max_tokens: int = 10_000) -> None:
        self.model_id, self.dimension, self.batch_size = model_id, dimension, 8
        self.max_seq_length = max_tokens
        self.calls = 0
        self.encoded = 0

    def _slot(self, word: str) -> int:
        return int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    def fits(self, text: str) -> bool:
        return self.count_tokens(text) <= self.max_seq_length

    def encode(self, texts, show_progress=False):
        self.calls += 1
        self.encoded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, self._slot(w.strip(".,'\"?"))] += 1.0
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else out[i]
        return out


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    dst = tmp_path / "docs"
    shutil.copytree(SEEDS, dst)
    return dst


@pytest.fixture(scope="session")
def embedder():
    from rag.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder) -> Path:
    import rag

    index = tmp_path_factory.mktemp("seed-index") / "index"
    rag.build_index(SEEDS, index, embedder=embedder)
    return index


@pytest.fixture(scope="session")
def seed_qa(seed_index, embedder):
    import rag

    return rag.load(seed_index, embedder=embedder)


@pytest.fixture(scope="session")
def tiny_qa_model(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BertForQuestionAnswering with the local MiniLM vocabulary.

    Built from a config, never downloaded; read-only for the tests that share it.
    """
    import torch
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    from rag.embedding import default_model_path

    out = tmp_path_factory.mktemp("tiny-qa")
    tok = BertTokenizerFast(vocab_file=str(default_model_path() / "vocab.txt"), do_lower_case=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(0)
    BertForQuestionAnswering(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def sources() -> dict[str, str]:
    return {p.relative_to(SEEDS).with_suffix("").as_posix(): p.read_text(encoding="utf-8")
            for p in SEEDS.rglob("*.txt")}


def kill_build_when_ready(script_text: str, tmp_path: Path, stage: str, docs: Path, index: Path,
                          timeout: float = 60) -> None:
    """Run a build script (it prints READY at the point ``stage`` names), SIGKILL it there, reap it."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "kill.py"
    script.write_text(script_text.format(tests=str(ROOT / "tests")))
    proc = subprocess.Popen([sys.executable, str(script), stage, str(docs), str(index)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=timeout)
        proc.stdout.close()


@pytest.fixture(scope="module")
def tiny_mpnet(tmp_path_factory):
    """A random 2-layer MPNet QA model (hidden 32) with the real MPNet tokenizer, saved to a folder."""
    import torch
    from transformers import AutoTokenizer, MPNetConfig, MPNetForQuestionAnswering

    from rag import encoders

    folder = tmp_path_factory.mktemp("tiny-mpnet")
    base = encoders.mpnet_path()
    tok = AutoTokenizer.from_pretrained(str(base), use_fast=True)
    torch.manual_seed(0)
    cfg = MPNetConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=514)
    MPNetForQuestionAnswering(cfg).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


@pytest.fixture
def tiny_squad(tmp_path) -> Path:
    """A gzipped SQuAD 2.0 file of two articles (T, D) over one context: twelve answerable
    questions and one unanswerable one in T, two in D (the dev title the training tests use)."""
    import gzip
    import json

    path = tmp_path / "tiny.json.gz"
    ctx = "Ankara bought the S-400 system from Russia in 2017. Deliveries began in July 2019."
    qas = [{"id": f"q{i}", "question": q, "is_impossible": False,
            "answers": [{"text": a, "answer_start": ctx.index(a)}]}
           for i, (q, a) in enumerate([("When did deliveries begin?", "July 2019"),
                                       ("Who sold the system?", "Russia"),
                                       ("When was it bought?", "2017")] * 4)]
    qas.append({"id": "qx", "question": "Who is the mayor?", "is_impossible": True, "answers": []})
    data = {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": ctx, "qas": qas}]},
                                        {"title": "D", "paragraphs": [{"context": ctx, "qas": qas[:2]}]}]}
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(data, fh)
    return path
