"""Models named by a Hugging Face id: fetched only when named; without a network, a clear ModelError.

The hub endpoint is pointed at a closed local port, so these tests never touch the network and
behave the same on a machine that has one.
"""
from __future__ import annotations

import pytest

import rag
from rag import hub
from rag.embedding import Embedder
from rag.readers.registry import make_reader


@pytest.fixture
def no_network(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once


@pytest.mark.parametrize("spec, expected", [
    ("sentence-transformers/all-MiniLM-L6-v2", True), ("deepset/roberta-base-squad2", True),
    ("fast", False), ("./models/x", False), ("~/x/y", False), ("/abs/path", False), ("a/b/c", False),
])
def test_what_counts_as_a_hub_id(spec, expected):
    assert hub.is_hub_id(spec) is expected


def test_a_folder_named_like_an_id_is_a_folder(tmp_path, monkeypatch):
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert not hub.is_hub_id("owner/name")


def test_embedder_hub_id_without_network_says_how_to_use_a_folder(no_network):
    from huggingface_hub import constants

    with pytest.raises(rag.ModelError) as e:
        Embedder("rag-tests/no-such-embedder")
    msg = str(e.value)
    assert "'rag-tests/no-such-embedder' could not be fetched from the Hugging Face Hub" in msg
    assert "huggingface-cli download rag-tests/no-such-embedder --local-dir DIR" in msg and "--model DIR" in msg
    assert constants.HF_HUB_OFFLINE  # offline mode is back on after the one attempt


def test_reader_hub_id_without_network_says_how_to_use_a_folder(no_network):
    with pytest.raises(rag.ModelError, match=r"reader 'rag-tests/no-such-reader' could not be fetched.*--reader DIR"):
        make_reader("rag-tests/no-such-reader", None)


def test_a_path_that_is_neither_is_refused_naming_both_forms():
    with pytest.raises(rag.ModelError, match="neither a local folder nor a Hugging Face id"):
        Embedder("/no/such/model/folder")
