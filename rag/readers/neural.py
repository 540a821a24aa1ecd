"""A neural extractive-QA reader: a fine-tuned transformer that points at answer spans.

By default it loads the packaged model in ``rag/models/reader`` (all-MiniLM-L6-v2 fine-tuned on
SQuAD 2.0-format data, see its MODEL_CARD.md), but any transformers extractive-QA model folder
works (BERT, RoBERTa, ...): the tokenizer and model are loaded with the Auto classes, and the
first token of every window ([CLS] / <s>) carries the no-answer score.

How ``read`` scores spans (comparable across passages and windows):

1. Every passage is tokenized with the question as a (question, passage) pair; long passages
   become several windows (``max_length`` tokens, ``stride`` tokens of overlap). A window only
   ever holds one passage, so spans never cross a passage boundary, and spans are only taken
   from passage tokens (never the question, special tokens or padding).
2. All windows of all passages go through the model in one batched forward pass (split into a
   few batches of windows of about one length where that spares padding: ``length_groups``).
3. Joint normalisation (Haystack ExtractiveReader / SQuAD 2.0 style): a span (i, j) of window w
   has logit ``s[w,i] + e[w,j]``; the question's no-answer logit is the null logit of the most
   confident window, ``null = min_w (s[w,0] + e[w,0])`` (as in the SQuAD 2.0 reference
   post-processing: "no answer" must hold for every window). Then
       P(span) = exp(s+e) / (sum over ALL valid spans of ALL windows exp(s+e) + exp(null))
       no_answer = exp(null) / (same denominator),
   where valid spans have ``i <= j``, ``j - i < max_answer_tokens`` and both ends on passage
   tokens. This is exactly a softmax of the start logits over all windows' passage tokens plus
   the no-answer start logit, times the same for end logits, restricted to valid spans and
   renormalised. The candidates' scores and ``no_answer`` therefore sum to at most 1 and are
   comparable across passages and windows.
4. The span is mapped from token offsets to characters of ``passage.text``, surrounding
   whitespace and punctuation are trimmed (keeping e.g. the dot of "U.S."), spans that run across
   a paragraph break (a blank line) are dropped, and the absolute
   offsets are ``passage.start + offset``. The same span found in two overlapping windows (or
   two spans that trim to the same text) is one candidate: probabilities are summed, logits kept
   from the best copy.

``features`` of a candidate: start_logit, end_logit, span_logit (= start + end), span_prob (the
score), window_null_logit (s[w,0] + e[w,0] of its window), null_logit (the question's), passage
(index of the passage), window (index of the window), passage_score.
"""
from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..schema import Passage
from .base import ReaderOutput, SpanCandidate

MAX_QUESTION_TOKENS = 64
_LEAD_STRIP = " \t\r\n\u00a0,;:.!?-\u2013\u2014/"
_TRAIL_STRIP = " \t\r\n\u00a0,;:!?-\u2013\u2014/"
_ABBREV_END = re.compile(r"(?:\b[A-Za-z]\.)+$|\b(?:Jr|Sr|Inc|Ltd|Co|Corp|St|Dr|Mr|Mrs|Ms|etc|vs|No)\.$")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u00a0]*\n")
_PAIRS = {"(": ")", "[": "]", "{": "}", "\u201c": "\u201d", "\u2018": "\u2019"}


PRECISIONS = ("auto", "fp32", "int8", "bf16")


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX): bf16 weights are then the
    fastest way to run a reader; elsewhere bf16 is emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(x in flags.split() for x in ("avx512_bf16", "amx_bf16"))


MAX_PRECISION_LOSS = 0.005  # F1 a cheaper precision may lose on SQuAD dev and still be kept


def keep_precision(measured: dict[str, dict[str, float]], cheaper: str, *,
                   max_loss: float = MAX_PRECISION_LOSS) -> str:
    """``cheaper`` ("int8" or "bf16") when it lost at most ``max_loss`` of HasAns span F1 and of
    best-threshold F1 against fp32 and ran faster, else "fp32". ``measured`` maps a precision to
    ``{"hasans_f1_span", "best_f1", "seconds"}`` (fractions; what ``python -m rag.train.precision``
    writes into a model folder's ``inference.json``)."""
    base, alt = measured["fp32"], measured.get(cheaper)
    if alt is None:
        return "fp32"
    loss = max(base[k] - alt[k] for k in ("hasans_f1_span", "best_f1"))
    return cheaper if loss <= max_loss and alt["seconds"] < base["seconds"] else "fp32"


def choose_precision(precision: str, device: str, model_path: Path) -> str:
    """The precision "auto" means here: on a GPU fp32; on a CPU, what the model folder's
    ``inference.json`` says was kept on SQuAD dev for this kind of CPU (``keep_precision``): its
    ``native_bf16_precision`` on a CPU that computes bf16 natively (bf16 when the file does not say),
    its ``cpu_precision`` elsewhere (fp32 when it does not say). ``RAG_READER_PRECISION`` overrides
    "auto"."""
    if precision != "auto":
        return precision
    env = os.environ.get("RAG_READER_PRECISION")
    if env:
        if env not in PRECISIONS[1:]:
            raise ValueError(f"RAG_READER_PRECISION must be fp32, int8 or bf16, got {env!r}")
        return env
    if device != "cpu":
        return "fp32"
    import json

    try:
        kept = json.loads((Path(model_path) / "inference.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    if cpu_has_native_bf16():
        return kept.get("native_bf16_precision", "bf16")
    return kept.get("cpu_precision", "fp32")


def to_precision(model, precision: str, device: str = "cpu", model_path: str | os.PathLike | None = None):
    """An fp32 ``model`` made to run in ``precision``: "fp32" as it is, "int8" dynamic quantisation
    of its Linear layers (on a CPU; elsewhere it stays fp32), smoothed by the activation maxima in
    ``model_path`` where that folder has them (``rag.readers.int8``), "bf16" bf16 weights. The one
    place both the reader and the dev measurement behind ``inference.json`` convert a model."""
    if precision not in PRECISIONS[1:]:
        raise ValueError(f"precision must be fp32, int8 or bf16, got {precision!r}")
    if precision == "int8" and device == "cpu":
        from . import int8

        return int8.quantize_int8(model, int8.load_smoothing(model_path) if model_path is not None else None)
    if precision == "bf16":
        import torch

        return model.to(torch.bfloat16)
    return model


# What one more forward call costs, in padded token positions (the per-call work outside the matrix
# products: 12 layers of small ops). benchmarks/bench_length_groups.py measured 12-31 for MPNet in
# fp32 on a 2-core AVX2 CPU; a CPU that does the matrix products faster (bf16 on AMX: about 3.7x)
# pays relatively more per call, so the cut errs toward fewer calls.
FORWARD_CALL_TOKENS = 64


def length_groups(lengths: Sequence[int], call_tokens: int = FORWARD_CALL_TOKENS) -> list[tuple[list[int], int]]:
    """Split windows of these token lengths into batches that pad least: ``[(rows, width), ...]``.

    Windows sorted longest first are cut into runs; a run costs ``len(run) * its longest`` padded
    positions plus ``call_tokens`` for its forward call, and the cuts minimise the sum (exact, by
    dynamic programming over the sorted order, where an optimal grouping is always contiguous).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            c = best[i] + (j - i) * lengths[order[i]] + call_tokens
            if c < best[j]:
                best[j], cut[j] = c, i
    groups = []
    j = n
    while j > 0:
        i = cut[j]
        groups.append((sorted(order[i:j]), int(lengths[order[i]])))
        j = i
    return groups[::-1]


def clip_question(tokenizer, question: str) -> str:
    """The question with its whitespace collapsed, cut to its first ``MAX_QUESTION_TOKENS`` tokens
    (so the passage keeps the window). Training and reading clip the same way."""
    question = " ".join(question.split())
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) > MAX_QUESTION_TOKENS:
        question = question[: enc["offset_mapping"][MAX_QUESTION_TOKENS - 1][1]]
    return question


def default_model_path() -> Path:
    """The packaged model folder ``rag/models/reader`` (works for editable and normal installs)."""
    try:
        from importlib.resources import files

        p = files("rag").joinpath("models", "reader")
        return Path(str(p))
    except Exception:  # pragma: no cover - fallback for unusual loaders
        return Path(__file__).resolve().parent.parent / "models" / "reader"


def trim_span(text: str, a: int, b: int) -> tuple[int, int]:
    """Trim whitespace and surrounding punctuation from ``text[a:b]`` (never growing it).

    A final full stop is kept when it ends an abbreviation ("U.S.", "Jr."); unbalanced brackets
    and quotes at either end are removed, balanced ones kept ("(1990)" stays).
    """
    for _ in range(4):
        a0, b0 = a, b
        while a < b and text[a] in _LEAD_STRIP:
            a += 1
        while a < b and text[b - 1] in _TRAIL_STRIP:
            b -= 1
        if a < b and text[b - 1] == "." and not _ABBREV_END.search(text[a:b]):
            b -= 1
        # unbalanced brackets / quotes at the edges
        if a < b:
            first, last = text[a], text[b - 1]
            for o, c in _PAIRS.items():
                if first == o and c not in text[a + 1:b]:
                    a += 1
                    break
            if a < b and last in _PAIRS.values():
                o = next(k for k, v in _PAIRS.items() if v == last)
                if o not in text[a:b - 1] and not (last == "\u2019" and b - a > 1 and text[b - 2].isalpha()):
                    b -= 1
            if a < b and text[a] in "\"'" and text[a] not in text[a + 1:b]:
                a += 1
            if a < b and text[b - 1] == '"' and '"' not in text[a:b - 1]:
                b -= 1
        if (a, b) == (a0, b0):
            break
    return a, b


class NeuralReader:
    """Extractive QA with a transformer QA model (see the module docstring for the scoring)."""

    name = "custom"
    uses_vectors = False  # reads the text only

    def __init__(self, model_path: str | os.PathLike | None = None, *, name: str | None = None,
                 max_length: int = 384, stride: int = 128, max_answer_tokens: int = 30, top_n: int = 20,
                 per_passage: int = 3, device: str = "cpu", quantize: bool = False,
                 precision: str = "auto") -> None:
        """``model_path``: a QA model folder or a rag LoRA adapter folder (default: the shipped
        MiniLM). ``name`` keys the tuned settings (``rag/models/<name>_settings.json``); a folder
        of your own is "custom" (no shipped settings). ``precision``: "fp32", "int8" (dynamic
        quantisation of the Linear layers), "bf16" (bf16 weights, for CPUs with native bf16) or
        "auto" (see ``choose_precision``). ``quantize=True`` is the older spelling of "int8"."""
        if model_path is None:
            model_path, name = default_model_path(), name or "minilm"
        self.model_path = Path(model_path)
        if name:
            self.name = name
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = "int8" if quantize else precision
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.top_n = top_n
        self.per_passage = per_passage
        self.device = device
        self._tokenizer: Any = None
        self._model: Any = None
        self._lock = threading.Lock()

    # -- loading -----------------------------------------------------------------------------
    def warm_up(self) -> "NeuralReader":
        """Load the tokenizer and model (done lazily by the first ``read``)."""
        if self._model is not None:
            return self
        with self._lock:
            if self._model is not None:
                return self
            import torch
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            if not (self.model_path / "config.json").exists() and not (Path(self.model_path) / "adapter.json").is_file():
                raise FileNotFoundError(f"no QA model at {self.model_path} (config.json missing)")
            device = self.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            self.device = device
            from .. import adapters

            if adapters.is_adapter_folder(self.model_path):  # a LoRA adapter: merged into its base
                tok, model = adapters.load_merged(self.model_path)
            else:
                tok = AutoTokenizer.from_pretrained(str(self.model_path), use_fast=True)
                model = AutoModelForQuestionAnswering.from_pretrained(str(self.model_path))
            if not getattr(tok, "is_fast", False):
                raise ValueError("NeuralReader needs a fast tokenizer (offset mapping)")
            model = model.float().to(device).eval()  # shipped weights are fp16: compute in fp32
            precision = choose_precision(self.precision, device, self.model_path)
            model = to_precision(model, precision, device, self.model_path)
            self.precision_used = precision
            self._tokenizer, self._model = tok, model
        return self

    # -- reading -----------------------------------------------------------------------------
    def forward(self, question: str, passages: Sequence[Passage]):
        """Tokenize the question against every passage and run the windows through the model.

        The windows go in one batch, or in a few batches of windows of about one length when that
        spares padding (``length_groups``): a padded position costs as much as a real one, and the
        merged reading windows run from about 100 to 384 tokens. Pads are masked, so the logits of
        the real tokens are the one batch's (up to rounding); the pads' stay 0 and nothing reads them.

        Returns ``(kept, enc, out)``: indexes of the non-empty passages, the tokenizer output
        (windows, offsets) and every window's start and end logits (transformers'
        ``QuestionAnsweringModelOutput``, fp32 on the CPU, padded as ``enc``);
        ``None`` when there is nothing to read.
        """
        import torch
        from transformers.modeling_outputs import QuestionAnsweringModelOutput

        kept = [k for k, p in enumerate(passages) if p.text.strip()]
        if not kept or not question.strip():
            return None
        self.warm_up()
        tok, model = self._tokenizer, self._model
        q = clip_question(self._tokenizer, question)
        texts = [passages[k].text for k in kept]
        q_first = tok.padding_side == "right"
        ml = max(self.max_length, MAX_QUESTION_TOKENS + 32)
        enc = tok([q] * len(texts) if q_first else texts, texts if q_first else [q] * len(texts),
                  truncation="only_second" if q_first else "only_first", max_length=ml,
                  stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                  padding="longest", return_tensors="pt")
        inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        lengths = enc["attention_mask"].sum(dim=1).tolist()
        n_win, n_tok = enc["input_ids"].shape
        left = tok.padding_side == "left"
        start = torch.zeros((n_win, n_tok))
        end = torch.zeros((n_win, n_tok))
        with torch.inference_mode():
            for rows, width in length_groups(lengths, FORWARD_CALL_TOKENS):
                cols = slice(n_tok - width, n_tok) if left else slice(0, width)
                part = {k: v[rows, cols].to(self.device) for k, v in inputs.items()}
                o = model(**part)
                start[rows, cols] = o.start_logits.float().cpu()
                end[rows, cols] = o.end_logits.float().cpu()
        return kept, enc, QuestionAnsweringModelOutput(start_logits=start, end_logits=end)

    def read(self, question: str, passages: Sequence[Passage], qvec: Any = None) -> ReaderOutput:
        """Spans from one batched forward over ``passages`` (``qvec`` is not used)."""
        import torch

        res = self.forward(question, passages)
        if res is None:
            return ReaderOutput(candidates=[], no_answer=1.0)
        kept, enc, out = res
        q_first = self._tokenizer.padding_side == "right"
        ctx_seq = 1 if q_first else 0
        n_win, n_tok = enc["input_ids"].shape
        ctx_mask = torch.zeros((n_win, n_tok), dtype=torch.bool)
        for w in range(n_win):
            for i, s in enumerate(enc.sequence_ids(w)):
                if s == ctx_seq:
                    ctx_mask[w, i] = True
        S, E = out.start_logits, out.end_logits  # fp32 on the CPU (``forward``)
        offsets = enc["offset_mapping"]
        win_passage = enc["overflow_to_sample_mapping"].tolist()

        # Valid (start, end) pairs: both on passage tokens, start <= end, length capped.
        L = self.max_answer_tokens
        band = torch.ones(n_tok, n_tok, dtype=torch.bool).triu() & ~torch.ones(n_tok, n_tok, dtype=torch.bool).triu(L)
        valid = ctx_mask[:, :, None] & ctx_mask[:, None, :] & band[None]
        span_logits = (S[:, :, None] + E[:, None, :]).masked_fill(~valid, float("-inf"))
        win_null = S[:, 0] + E[:, 0]
        null_logit = float(win_null.min())
        log_z = torch.logsumexp(torch.cat([span_logits.reshape(-1), torch.tensor([null_logit])]), 0)
        no_answer = float(torch.exp(null_logit - log_z))

        merged: dict[tuple[str, int, int], dict[str, Any]] = {}
        flat = span_logits.reshape(n_win, -1)
        for w in range(n_win):
            n_valid = int(valid[w].sum())
            if n_valid == 0:
                continue
            vals, idx = torch.topk(flat[w], min(self.top_n, n_valid))
            pk = win_passage[w]
            passage = passages[kept[pk]]
            for v, ix in zip(vals.tolist(), idx.tolist()):
                i, j = divmod(ix, n_tok)
                a, b = int(offsets[w, i, 0]), int(offsets[w, j, 1])
                a, b = trim_span(passage.text, a, b)
                if a >= b or _PARAGRAPH_BREAK.search(passage.text, a, b):
                    continue  # empty, or runs across a paragraph break (title + dateline, two paragraphs)
                prob = float(torch.exp(torch.tensor(v) - log_z))
                key = (passage.doc_id, passage.start + a, passage.start + b)
                cur = merged.get(key)
                if cur is None:
                    merged[key] = {"a": a, "b": b, "passage": passage, "prob": prob, "logit": v,
                                   "s": float(S[w, i]), "e": float(E[w, j]), "w": w, "pk": kept[pk]}
                else:
                    cur["prob"] += prob
                    if v > cur["logit"]:
                        cur.update(logit=v, s=float(S[w, i]), e=float(E[w, j]), w=w, pk=kept[pk])
        cands = []
        for (doc_id, start, end), m in merged.items():
            p: Passage = m["passage"]
            score = min(max(m["prob"], 0.0), 1.0)
            cands.append(SpanCandidate(
                doc_id=doc_id, start=start, end=end, text=p.text[m["a"]:m["b"]], score=score, passage=p,
                features={"start_logit": m["s"], "end_logit": m["e"], "span_logit": m["logit"],
                          "span_prob": score, "window_null_logit": float(win_null[m["w"]]),
                          "null_logit": null_logit, "passage": float(m["pk"]), "window": float(m["w"]),
                          "passage_score": float(p.score)}))
        cands.sort(key=lambda c: (-c.score, -c.features["span_logit"], c.doc_id, c.start, c.end))
        # The global top_n, plus each passage's best few: one softmax over all windows lets one
        # confident passage crowd the others out, and a later stage (fusion, the alternatives of
        # a disagreement) needs to see what every passage would answer.
        keep = cands[: self.top_n]
        per_passage = Counter((c.passage.doc_id, c.passage.start) for c in keep)
        for c in cands[self.top_n:]:
            key = (c.passage.doc_id, c.passage.start)
            if per_passage[key] < self.per_passage:
                keep.append(c)
                per_passage[key] += 1
        return ReaderOutput(candidates=keep, no_answer=min(max(no_answer, 0.0), 1.0))


__all__ = ["NeuralReader", "default_model_path", "trim_span"]
