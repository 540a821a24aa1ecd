"""The index: version folders on disk (``versions``), building one (``build``), opening one
(``opened``), and the Ray path of a build (``distributed``)."""
from .build import build_index
from .opened import OpenIndex, open_index

__all__ = ["OpenIndex", "build_index", "open_index"]
