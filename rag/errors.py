"""The exceptions the library raises on bad input or a bad index. Each message says what to do."""
from __future__ import annotations

import os


def rebuild_hint(index_dir: str | os.PathLike, docs: str | None = None) -> str:
    """The fix every "this index cannot be used" message ends with."""
    return f"rebuild it with `rag index {docs or 'DOCS'} --index {index_dir}`"


class RagError(Exception):
    """Base class: every error the library raises on purpose. The CLI prints it in one line."""


class InputError(RagError, ValueError):
    """A question, setting or argument that cannot be used as given."""


class DocumentsError(RagError):
    """The docs folder is missing, empty, or holds nothing that can be indexed."""


class IndexFolderError(RagError):
    """Base for problems with an index folder."""


class IndexNotFoundError(IndexFolderError, FileNotFoundError):
    """There is no index at the given folder."""


class IndexCorruptError(IndexFolderError):
    """Index files are missing, truncated or do not agree with each other or the manifest."""


class IndexMismatchError(IndexFolderError):
    """The index was built with another model, dimension or format version."""


class IndexLockedError(IndexFolderError):
    """Another build holds the index lock."""


class ModelError(RagError):
    """A model could not be found or loaded offline."""


class StoreError(RagError):
    """A vector store (e.g. a Milvus server) is unreachable or does not match the index."""


class ExtraMissingError(RagError, ImportError):
    """An optional feature needs packages from an extra that is not installed."""


def need_extra(module: str, feature: str, extra: str = "scale") -> None:
    """Import ``module`` or raise a one-line error naming the extra and its install command."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise ExtraMissingError(f"{feature} needs the optional extra [{extra}] ({module} is not installed): "
                                f"pip install -e '.[{extra}]' (or bash scripts/setup.sh --{extra})") from None
