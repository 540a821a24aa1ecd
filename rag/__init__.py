"""Offline extractive question answering over plain-text articles, with exact citations.

    import rag
    info = rag.build_index("seeds", "index")
    qa = rag.load("index")
    qa.retrieve("Who heads Rosoboronexport?", k=5)   # list[Passage]
    qa.ask("Who heads Rosoboronexport?")             # Answer (text=None: not in these articles)
"""
import os as _os

_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from .errors import (  # noqa: E402
    DocumentsError, IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, InputError,
    ModelError, RagError,
)
from .indexing import build_index  # noqa: E402
from .pipeline import QA, load  # noqa: E402
from .schema import Answer, Chunk, Document, IndexInfo, Passage  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Answer", "Chunk", "Document", "IndexInfo", "Passage", "QA", "build_index", "load",
    "RagError", "InputError", "DocumentsError", "IndexNotFoundError", "IndexCorruptError", "IndexMismatchError",
    "IndexLockedError", "ModelError", "__version__",
]
