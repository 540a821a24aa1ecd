"""Offline extractive question answering over plain-text articles, with exact citations.

    import rag
    info = rag.build_index("seeds", "index")
    qa = rag.load("index")
    qa.retrieve("Who heads Rosoboronexport?", k=5)   # list[Passage]
    qa.ask("Who heads Rosoboronexport?")             # Answer (text=None: not in these articles)
"""
import os as _os

# The one place the package's environment defaults are set (every ``rag.*`` import runs this
# first): nothing may be fetched from a hub unless the user names a model (``rag.hub``), and the
# tokenizers' own thread pool and progress noise stay off.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "sequence longer than ..." noise: we check lengths
_os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from .errors import (  # noqa: E402
    DocumentsError, IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, InputError,
    ModelError, RagError,
)
from .index import build_index  # noqa: E402
from .pipeline import QA, load  # noqa: E402
from .schema import Answer, Chunk, Document, IndexInfo, Passage  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Answer", "Chunk", "Document", "IndexInfo", "Passage", "QA", "build_index", "load",
    "RagError", "InputError", "DocumentsError", "IndexNotFoundError", "IndexCorruptError", "IndexMismatchError",
    "IndexLockedError", "ModelError", "__version__",
]
