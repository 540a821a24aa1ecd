"""Distillation: a small reader (the student) taught by a large one's (the teacher's) span logits.

``rag train-reader --teacher rag/models/reader_mpnet`` trains the student on the usual hard
targets and, beside them, on the teacher's start and end distributions over the same windows
(Hinton et al.'s soft targets, as DistilBERT's SQuAD student was trained):

    loss = alpha * hard + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T)),

for the start logits and the end logits alike, ``t`` the teacher's and ``s`` the student's, over
the window's no-answer slot ([CLS] / <s>) and its passage tokens; ``hard`` is the plain reader's
loss. The teacher may tokenize differently (MPNet's <s> ... </s></s> ... </s> against MiniLM's
[CLS] ... [SEP] ... [SEP]): it reads each student window's question and the exact stretch of the
passage that window holds, and its logits are carried over by character offsets, a token's start
logit to the student token that starts at the same character, its end logit to the one that ends
there. Student tokens no teacher token lines up with (a word split differently) are left out of
the KL on both sides, so the soft targets never invent a probability.

The teacher's logits are computed once per run, before the first step (one forward of the
teacher over every training window, in the teacher's precision for this CPU), and kept in
``RUN/teacher_logits.pt`` with a key (teacher, windows), so a resumed run reuses them.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..encoders import file_sha256
from ..errors import ModelError
from ..readers.neural import clip_question

TEACHER_FILE = "teacher_logits.pt"
NEG = float("-inf")


def teacher_id(teacher: str | os.PathLike) -> str:
    """What names a teacher in a run's log and its logits' cache key: its folder and the sha256 of
    its weights file (adapter or full model)."""
    folder = Path(teacher)
    for name in ("adapter.safetensors", "model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return f"{folder}@{file_sha256(folder / name)[:16]}"
    raise ModelError(f"--teacher {str(teacher)!r} holds no reader (adapter.safetensors or model.safetensors): "
                     "pass a reader folder such as rag/models/reader_mpnet")


def align(student_offsets: Sequence[Any], n_student: int, teacher_offsets: Sequence[Any], shift: int,
          t_start: Sequence[float], t_end: Sequence[float]) -> tuple[list[float], list[float]]:
    """The teacher's start and end logits laid on the student's ``n_student`` positions:
    position 0 (the no-answer slot) gets the teacher's position 0; a student passage token (its
    ``student_offsets`` entry a (start, end) pair of characters of the whole passage) gets the
    logit of the teacher passage token starting (ending) at the same character (``teacher_offsets``
    are relative to the window's text, which begins ``shift`` characters into the passage; None
    for non-passage tokens); every other position -inf (left out of the KL)."""
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    for i, o in enumerate(teacher_offsets):
        if o is None or o[1] <= o[0]:
            continue
        starts.setdefault(o[0] + shift, i)
        ends[o[1] + shift] = i
    s = [NEG] * n_student
    e = [NEG] * n_student
    s[0], e[0] = float(t_start[0]), float(t_end[0])
    for k, o in enumerate(student_offsets):
        if o is None or k == 0 or o[1] <= o[0]:
            continue
        if o[0] in starts:
            s[k] = float(t_start[starts[o[0]]])
        if o[1] in ends:
            e[k] = float(t_end[ends[o[1]]])
    return s, e


def teacher_logits(tok, model, examples: Sequence[dict[str, Any]], feats: Sequence[dict[str, Any]],
                   *, device: str = "cpu", batch_size: int = 32, progress: bool = True) -> list[tuple[Any, Any]]:
    """For every student feature (``rag.train.neural.featurize``'s windows over ``examples``), the
    teacher's (start, end) logits aligned to its positions (``align``), as fp32 tensors; ``tok`` and
    ``model`` are the teacher's (``rag.train.neural.load_model``)."""
    import torch
    from tqdm.auto import tqdm

    right = tok.padding_side == "right"
    ctx_seq = 1 if right else 0
    jobs = []
    for n, f in enumerate(feats):
        ex = examples[f["example"]]
        c0, c1 = f["offsets"][f["ctx_start"]][0], f["offsets"][f["ctx_end"]][1]
        jobs.append((n, clip_question(tok, ex["question"]), ex["context"][c0:c1], c0))
    jobs.sort(key=lambda j: len(j[1]) + len(j[2]))
    out: list[Any] = [None] * len(feats)
    with torch.inference_mode():
        for lo in tqdm(range(0, len(jobs), batch_size), desc="teacher", disable=not progress, mininterval=10):
            chunk = jobs[lo: lo + batch_size]
            qs, cs = [j[1] for j in chunk], [j[2] for j in chunk]
            enc = tok(qs if right else cs, cs if right else qs, truncation="only_second" if right else "only_first",
                      max_length=512, padding=True, return_offsets_mapping=True, return_tensors="pt")
            offsets = enc.pop("offset_mapping").tolist()
            res = model(**{k: v.to(device) for k, v in enc.items()})
            S, E = res.start_logits.float().cpu().tolist(), res.end_logits.float().cpu().tolist()
            for r, (n, _, _, shift) in enumerate(chunk):
                seq = enc.sequence_ids(r)
                t_off = [o if s == ctx_seq else None for o, s in zip(offsets[r], seq)]
                f = feats[n]
                s, e = align(f["offsets"], len(f["input_ids"]), t_off, shift, S[r], E[r])
                out[n] = (torch.tensor(s), torch.tensor(e))
    return out


def cached_teacher_logits(run_dir: Path, teacher: str | os.PathLike, load, examples, feats, *, device: str = "cpu",
                          progress: bool = True) -> list[tuple[Any, Any]]:
    """``teacher_logits``, kept in ``run_dir/teacher_logits.pt`` (fp16) and reused while the key
    (teacher id, number and lengths of the windows) matches: a resumed run does not redo them.
    ``load()`` gives the teacher's (tokenizer, model); it is called only when the cache misses."""
    import torch

    lengths = [len(f["input_ids"]) for f in feats]
    key = f"{teacher_id(teacher)}|{len(feats)}|{hashlib.sha256(str(lengths).encode()).hexdigest()[:16]}"
    path = Path(run_dir) / TEACHER_FILE
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            return [(s.float(), e.float()) for s, e in zip(saved["start"], saved["end"])]
    got = teacher_logits(*load(), examples, feats, device=device, progress=progress)
    tmp = path.with_suffix(".tmp")
    torch.save({"key": key, "start": [s.half() for s, _ in got], "end": [e.half() for _, e in got]}, tmp)
    os.replace(tmp, path)
    return got


def pad_targets(rows: Sequence[Any], n: int):
    """Teacher rows (1-D tensors of their windows' lengths) padded with -inf to ``n`` columns."""
    import torch

    out = torch.full((len(rows), n), NEG)
    for r, t in enumerate(rows):
        out[r, : t.shape[0]] = t
    return out


def kd_loss(student, teacher, temperature: float):
    """Per window, ``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` over the positions
    where the teacher has a logit (finite); ``student`` and ``teacher`` are (windows, positions)."""
    import torch

    mask = torch.isfinite(teacher)
    t = teacher.masked_fill(~mask, NEG) / temperature
    s = student.masked_fill(~mask, NEG) / temperature
    log_pt = torch.log_softmax(t, -1)
    log_ps = torch.log_softmax(s, -1)
    kl = torch.where(mask, log_pt.exp() * (log_pt - log_ps), torch.zeros_like(t)).sum(-1)
    return kl * temperature ** 2


__all__ = ["align", "cached_teacher_logits", "kd_loss", "pad_targets", "teacher_id",
           "teacher_logits"]
