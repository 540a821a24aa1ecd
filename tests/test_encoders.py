"""The MPNet base is assembled from split zip parts once, verified, and refused when corrupt."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from rag import encoders
from rag.errors import ModelError


def _fake_parts(tmp_path: Path, n: int = 3, name: str = "all-mpnet-base-v2") -> tuple[list[Path], str]:
    weights = bytes(range(256)) * 300
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}/model.safetensors", weights)
        z.writestr(f"{name}/config.json", '{"model_type": "mpnet"}')
        z.writestr(f"{name}/vocab.txt", "[PAD]\n")
        z.writestr(f"{name}/desktop.ini", "junk")
    data = buf.getvalue()
    size = -(-len(data) // n)
    parts = []
    for i in range(n):
        p = tmp_path / f"{name}.zip.{i + 1:03d}"
        p.write_bytes(data[i * size:(i + 1) * size])
        parts.append(p)
    return parts, hashlib.sha256(weights).hexdigest()


def test_assemble_verifies_and_reuses(tmp_path):
    parts, sha = _fake_parts(tmp_path)
    dest = tmp_path / "cache" / "all-mpnet-base-v2"
    out = encoders.assemble(parts, dest, sha256=sha)
    assert out == dest and (dest / "model.safetensors").read_bytes() == bytes(range(256)) * 300
    assert (dest / "config.json").is_file() and not (dest / "desktop.ini").exists()
    assert encoders.verified(dest, sha)
    mtime = (dest / "model.safetensors").stat().st_mtime_ns
    for p in parts:  # a later call does not read the parts again
        p.unlink()
    assert encoders.assemble(parts, dest, sha256=sha) == dest
    assert (dest / "model.safetensors").stat().st_mtime_ns == mtime
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_corrupt_part_is_refused_and_nothing_is_left(tmp_path):
    parts, sha = _fake_parts(tmp_path)
    raw = bytearray(parts[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    parts[1].write_bytes(bytes(raw))
    dest = tmp_path / "cache" / "all-mpnet-base-v2"
    with pytest.raises(ModelError, match="setup.sh"):
        encoders.assemble(parts, dest, sha256=sha)
    assert not dest.exists()
    assert list((tmp_path / "cache").iterdir()) == []


def test_wrong_hash_is_refused(tmp_path):
    parts, _ = _fake_parts(tmp_path)
    with pytest.raises(ModelError, match="sha256"):
        encoders.assemble(parts, tmp_path / "c" / "m", sha256="0" * 64)


def test_missing_part_is_refused(tmp_path):
    parts, sha = _fake_parts(tmp_path)
    with pytest.raises(ModelError, match="setup.sh"):
        encoders.assemble(parts[:2], tmp_path / "c" / "m", sha256=sha)
    missing = tmp_path / "nope.zip.003"
    with pytest.raises(ModelError, match="cannot read"):
        encoders.assemble([parts[0], parts[1], missing], tmp_path / "c" / "m", sha256=sha)


def test_a_failed_reassembly_keeps_the_verified_folder(tmp_path):
    parts, sha = _fake_parts(tmp_path)
    dest = tmp_path / "cache" / "m"
    encoders.assemble(parts, dest, sha256=sha)
    (dest / ".rag-verified.json").unlink()  # force a reassembly
    parts[0].write_bytes(b"garbage")
    with pytest.raises(ModelError):
        encoders.assemble(parts, dest, sha256=sha)
    assert (dest / "model.safetensors").is_file()


def test_resolve_encoder_names_and_errors(tmp_path):
    assert Path(encoders.resolve_encoder(None)).is_dir()
    assert encoders.resolve_encoder("minilm") == encoders.resolve_encoder(None)
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        encoders.resolve_encoder(tmp_path / "m")
    with pytest.raises(ModelError, match="does not exist"):
        encoders.resolve_encoder(str(tmp_path / "absent"))


def test_installed_mpnet_is_verified():
    """The real parts that scripts/setup.sh installs assemble into the verified base."""
    folder = encoders.mpnet_path()
    assert encoders.verified(folder, encoders.MPNET_SHA256)
    assert (folder / "model.safetensors").stat().st_size == 437971872
