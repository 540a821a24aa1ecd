"""The exceptions the library raises on bad input or a bad index. Each message says what to do."""
from __future__ import annotations


class RagError(Exception):
    """Base class: every error the library raises on purpose. The CLI prints it in one line."""


class InputError(RagError, ValueError):
    """A question, setting or argument that cannot be used as given."""


class DocumentsError(RagError):
    """The docs folder is missing, empty, or holds nothing that can be indexed."""


class IndexError_(RagError):
    """Base for problems with an index folder (named with a trailing underscore: not the builtin)."""


class IndexNotFoundError(IndexError_, FileNotFoundError):
    """There is no index at the given folder."""


class IndexCorruptError(IndexError_):
    """Index files are missing, truncated or do not agree with each other or the manifest."""


class IndexMismatchError(IndexError_):
    """The index was built with another model, dimension or format version."""


class IndexLockedError(IndexError_):
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
