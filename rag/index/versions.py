"""An index on disk: a folder of plain files, versioned, swapped in atomically.

    index/
      CURRENT              name of the live version (replaced atomically with os.replace)
      .lock                held by a build (fcntl), so concurrent builds run one after another
      v-<time>-<id>/       one complete version:
        manifest.json      format version, model, dimension, settings, documents with hashes,
                           and every file's size and sha256
        vectors.faiss      FAISS inner-product index over unit vectors (row i = chunk i)
        chunks.jsonl       the chunk table, one JSON object per line
        chunks.offsets.npy byte offset of every line of chunks.jsonl (n + 1 int64), so a row is
                           read on its own (the table is never loaded whole: see ChunkTable)
        documents.jsonl    titles, body segments, content hashes, formats, PDF page starts, metadata
        sources.jsonl      each document's text, the one its offsets index (row i = document i)
        sources.offsets.npy  byte offset of every line of sources.jsonl (one text read on its own)
        bm25/              the lexical index (bm25s: JSON + .npy)
        analysis.jsonl     per document: sentences, tokens, entities, parses (the feature reader)
        sentence_vectors.npy  one embedding per analysed sentence

A build writes a new version folder completely, then points CURRENT at it. A reader resolves
CURRENT once and reads only that folder, so it sees the old or the new index, never a mix; a
build killed at any point leaves CURRENT and the version it names untouched. Nothing is pickled.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorruptError, rebuild_hint, IndexLockedError, IndexMismatchError, IndexNotFoundError
from ..schema import Chunk, Document

FORMAT_VERSION = 1
CURRENT = "CURRENT"
LOCK = ".lock"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
CHUNK_OFFSETS = "chunks.offsets.npy"
DOCUMENTS = "documents.jsonl"
SOURCES = "sources.jsonl"
SOURCE_OFFSETS = "sources.offsets.npy"
BM25_DIR = "bm25"
ANALYSIS = "analysis.jsonl"
SENTENCE_VECTORS = "sentence_vectors.npy"
VERIFY_HASH_MAX_BYTES = 512 * 1024 * 1024  # sha256-check files up to this total size on load
#: Bumped when what the index stores of each document's text changes: a live index built before
#: (no stored sources) is rebuilt once by the next ``rag index``, even when no article changed.
SOURCES_LAYOUT = 1
CHUNK_CACHE_ROWS = 4096  # LRU cache of parsed chunk rows per open table


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def build_lock(index_dir: Path, *, timeout: float = 3600.0,
               on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the index's build lock; a second build waits for the first (up to ``timeout`` s)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+") as f:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait:
                    on_wait()
                waited = True
                if time.monotonic() > deadline:
                    raise IndexLockedError(f"another build of {str(index_dir)!r} has held its lock for over "
                                           f"{timeout:.0f} s; wait for it to finish or stop it") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def current_version(index_dir: str | os.PathLike) -> Path:
    """The folder of the live version; raises IndexNotFoundError with the command to build one."""
    index_dir = Path(index_dir)
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        if (index_dir / MANIFEST).is_file():
            return index_dir  # a flat folder (e.g. copied by hand): still loadable
        raise IndexNotFoundError(f"no index at {str(index_dir)!r}: build one with `rag index DOCS --index {index_dir}`")
    name = pointer.read_text(encoding="utf-8").strip()
    version = index_dir / name
    if not name or "/" in name or not version.is_dir():
        raise IndexCorruptError(f"{pointer} names a missing version {name!r}: {rebuild_hint(index_dir)}")
    return version


def write_version(index_dir: Path, manifest: dict[str, Any],
                  writers: dict[str, Callable[[Path], None]]) -> Path:
    """Write a complete new version and make it current. Call with the build lock held.

    ``writers`` maps a file or folder name to a function that writes it at the given path. The
    manifest is completed with each file's size and sha256 and written last.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        for name, write in writers.items():
            write(tmp / name)
        files = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                with open(p, "rb+") as f:
                    os.fsync(f.fileno())
                files[p.relative_to(tmp).as_posix()] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files}
        _write_text(tmp / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        _fsync_dir(tmp)
        name = f"v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        final = index_dir / name
        os.rename(tmp, final)
        previous = (index_dir / CURRENT).read_text(encoding="utf-8").strip() if (index_dir / CURRENT).is_file() else None
        pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
        _write_text(pointer_tmp, name + "\n")
        os.replace(pointer_tmp, index_dir / CURRENT)
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    collect_garbage(index_dir, keep={name, previous})
    return final


def collect_garbage(index_dir: Path, keep: set[str | None]) -> None:
    """Remove versions other than ``keep`` and leftovers of killed builds (build lock held)."""
    for p in index_dir.iterdir():
        if p.name in keep:
            continue
        if p.is_dir() and (p.name.startswith("v-") or p.name.startswith(".tmp-")):
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_file() and p.name.startswith(f".{CURRENT}."):
            p.unlink(missing_ok=True)


def read_manifest(version: Path) -> dict[str, Any]:
    path = version / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing: {rebuild_hint(version.parent)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IndexCorruptError(f"{path} is not valid JSON ({e}): {rebuild_hint(version.parent)}") from None
    fv = manifest.get("format_version")
    if not isinstance(fv, int):
        raise IndexCorruptError(f"{path} has no format_version: {rebuild_hint(version.parent)}")
    if fv > FORMAT_VERSION:
        raise IndexMismatchError(f"the index at {str(version.parent)!r} has format version {fv}, newer than this "
                                 f"rag reads ({FORMAT_VERSION}): upgrade rag, or {rebuild_hint(version.parent)}")
    if fv < FORMAT_VERSION:
        raise IndexMismatchError(f"the index at {str(version.parent)!r} has old format version {fv}: "
                                 f"{rebuild_hint(version.parent)}")
    return manifest


def verify_files(version: Path, manifest: dict[str, Any], *, hashes: bool | None = None) -> None:
    """Check every file the manifest lists: present, same size, and (small indexes) same sha256."""
    files = manifest.get("files", {})
    total = sum(int(v["bytes"]) for v in files.values())
    check_hash = total <= VERIFY_HASH_MAX_BYTES if hashes is None else hashes
    for name, meta in files.items():
        p = version / name
        if not p.is_file():
            raise IndexCorruptError(f"index file {name} is missing from {version}: {rebuild_hint(version.parent)}")
        size = p.stat().st_size
        if size != meta["bytes"]:
            raise IndexCorruptError(f"index file {name} has {size} bytes, the manifest says {meta['bytes']} "
                                    f"(truncated or edited): {rebuild_hint(version.parent)}")
        if check_hash and _sha256(p) != meta["sha256"]:
            raise IndexCorruptError(f"index file {name} was changed after the build (checksum differs): "
                                    f"{rebuild_hint(version.parent)}")


# --- chunk and document tables -----------------------------------------------------------------

def write_jsonl(rows: list[dict[str, Any]]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return write


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise IndexCorruptError(f"{path} line {i} is not valid JSON ({e}): "
                                        f"{rebuild_hint(path.parent.parent)}") from None
    return rows


def line_offsets(buf) -> np.ndarray:
    """Byte offsets of the lines of ``buf`` (n + 1 values: line i is buf[o[i]:o[i+1]])."""
    data = np.frombuffer(buf, dtype=np.uint8) if len(buf) else np.zeros(0, dtype=np.uint8)
    ends = np.flatnonzero(data == 10) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    if len(data) and offsets[-1] != len(data):  # a last line without a newline
        offsets = np.append(offsets, np.int64(len(data)))
    del data
    return offsets


def write_line_offsets(table_name: str) -> Callable[[Path], None]:
    """A writer of the line offsets of the JSONL table ``table_name`` next to ``path`` (the table
    is written before it)."""
    def write(path: Path) -> None:
        with open(path.parent / table_name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    offsets = line_offsets(mm)
            else:
                offsets = np.zeros(1, dtype=np.int64)
        np.save(path, offsets, allow_pickle=False)
    return write


def _map_jsonl(path: Path, offsets: np.ndarray | None, offsets_name: str, hint: str):
    """``path`` memory-mapped and its line offsets checked against it: ``(mapping, offsets)``.

    ``offsets`` (n + 1 ints: 0, each row's end) are computed from the file when None.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    if offsets is None:
        offsets = line_offsets(mm)
    offsets = np.asarray(offsets)
    if (offsets.ndim != 1 or len(offsets) < 1 or offsets.dtype.kind not in "iu" or int(offsets[0]) != 0
            or int(offsets[-1]) != size or (len(offsets) > 1 and bool(np.any(np.diff(offsets) <= 0)))):
        raise IndexCorruptError(f"{path.parent / offsets_name} does not match {path}: {hint}")
    return mm, offsets


def _row_json(mm, offsets: np.ndarray, row: int, path: Path, hint: str) -> Any:
    """Row ``row`` of a mapped JSONL table, parsed."""
    line = mm[int(offsets[row]):int(offsets[row + 1])]
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IndexCorruptError(f"{path} line {row + 1} is not valid JSON ({e}): {hint}") from None


class SourceTable:
    """The stored text of every document of a version: ``sources.jsonl`` memory-mapped, one row
    parsed per ``text(doc_id)`` (a corpus of large articles is never loaded whole)."""

    def __init__(self, path: Path, offsets_path: Path, doc_ids: list[str]) -> None:
        self.path = path
        self._hint = rebuild_hint(path.parent.parent)
        try:
            offsets = np.load(offsets_path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise IndexCorruptError(f"{offsets_path} is not a valid .npy file ({e}): {self._hint}") from None
        self._mm, self._offsets = _map_jsonl(path, offsets, offsets_path.name, self._hint)
        if len(self._offsets) != len(doc_ids) + 1:
            raise IndexCorruptError(f"{offsets_path} does not match {path} ({len(doc_ids)} documents): {self._hint}")
        self._row = {d: i for i, d in enumerate(doc_ids)}

    def text(self, doc_id: str) -> str:
        row = self._row[doc_id]
        r = _row_json(self._mm, self._offsets, row, self.path, self._hint)
        if not isinstance(r, dict) or r.get("doc_id") != doc_id or not isinstance(r.get("text"), str):
            raise IndexCorruptError(f"{self.path} line {row + 1} is not the text of {doc_id!r}: {self._hint}")
        return r["text"]


class ChunkTable(Sequence):
    """The chunk table of one index version, read lazily: ``table[row]`` parses one line.

    ``chunks.jsonl`` is memory-mapped (the page cache holds it, not the Python heap) and
    ``chunks.offsets.npy`` says where each row starts, so a 1M-chunk table opens in
    milliseconds and costs RAM only for the rows read (an LRU cache of parsed rows keeps the hot
    ones). It is a ``Sequence``: ``len()``, ``table[i]`` (negative too), slices, iteration and
    ``in`` work as on a list. The mapping outlives the file: a version removed by a later build
    stays readable for those who loaded it, and is never mixed with another.
    """

    def __init__(self, path: Path, offsets: np.ndarray | None = None, *, cache_rows: int = CHUNK_CACHE_ROWS,
                 index_dir: Path | None = None) -> None:
        self.path = Path(path)
        self._hint = rebuild_hint(index_dir or self.path.parent.parent)
        self._mm, self._offsets = _map_jsonl(self.path, offsets, CHUNK_OFFSETS, self._hint)
        self._cache: OrderedDict[int, Chunk] = OrderedDict()
        self._cache_rows = cache_rows
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _parse(self, row: int) -> Chunk:
        d = _row_json(self._mm, self._offsets, row, self.path, self._hint)
        try:
            c = Chunk.from_dict(d)
        except (KeyError, TypeError) as e:
            raise IndexCorruptError(f"{self.path} has a row without {e}: {self._hint}") from None
        if c.end - c.start != len(c.text):
            raise IndexCorruptError(f"chunk {c.chunk_id} (row {row}) has offsets {c.start}:{c.end} that do not "
                                    f"match its text: {self._hint}")
        return c

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = int(row)  # numpy integers too
        n = len(self)
        if row < 0:
            row += n
        if not 0 <= row < n:
            raise IndexError(f"chunk row {row} out of range (the table has {n} rows)")
        with self._lock:
            c = self._cache.get(row)
            if c is not None:
                self._cache.move_to_end(row)
                return c
        c = self._parse(row)
        with self._lock:
            self._cache[row] = c
            if len(self._cache) > self._cache_rows:
                self._cache.popitem(last=False)
        return c

    def __iter__(self) -> Iterator[Chunk]:
        # A full scan does not go through the cache (it would only evict the hot rows).
        for row in range(len(self)):
            c = self._cache.get(row)
            yield c if c is not None else self._parse(row)

    def __repr__(self) -> str:
        return f"ChunkTable({str(self.path)!r}, rows={len(self)})"


def open_chunks(version: Path, manifest: dict[str, Any] | None = None) -> ChunkTable:
    """The lazy chunk table of a version (offsets from ``chunks.offsets.npy``, else one scan)."""
    path = version / CHUNKS
    offsets = None
    listed = manifest is None or CHUNK_OFFSETS in manifest.get("files", {})
    if listed and (version / CHUNK_OFFSETS).is_file():  # indexes written before it get a scan
        try:
            offsets = np.load(version / CHUNK_OFFSETS, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise IndexCorruptError(f"{version / CHUNK_OFFSETS} is not a valid .npy file ({e}): "
                                    f"{rebuild_hint(version.parent)}") from None
    return ChunkTable(path, offsets, index_dir=version.parent)


def read_chunks(version: Path) -> list[Chunk]:
    """The whole chunk table as a list (small tables, tests); ``open_chunks`` reads lazily."""
    return list(open_chunks(version))


def read_documents(version: Path) -> dict[str, Document]:
    docs = {}
    for r in read_jsonl(version / DOCUMENTS):
        d = Document.from_dict(r)
        docs[d.doc_id] = d
    return docs
