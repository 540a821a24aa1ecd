"""Unanswerable training questions made from answerable ones (SQuAD 2.0 style negatives).

Two kinds, both labelled "no answer" and added to a training run beside the data's own
unanswerable questions:

* ``context_negatives``: the question paired with a near-miss paragraph of its own article
  (``NearMisses``: on topic, most shared words, none of its answers): what retrieval hands the reader.
* ``swap_negatives``: the question's asked-for thing swapped for one its paragraph does not state,
  read with its own paragraph: "How many *jets* will Turkey buy?" becomes "How many *pilots* will
  Turkey buy?" when the paragraph names pilots but counts none, and "How *far* can it fly?" becomes
  "How *fast* can it fly?" when the paragraph says nothing of speed. A reader that takes the figure
  beside the question's other words for the answer, whatever the question asks of it, answers
  these; the gold set's near misses ("How many Turkish pilots are training on the F-35?" answered
  "100", the number of jets on order) are that failure.
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..answer import expects_count
from ..errors import InputError


class NearMisses:
    """Paragraphs of a question's own article ranked by the words they share with the question
    (``rag.lexical.tokenize``; the shorter paragraph first on a tie): the near misses a retriever
    hands the reader in use, on topic and without the answer."""

    def __init__(self, examples: Iterable[dict[str, Any]]) -> None:
        from ..lexical import tokenize

        self._tokenize = tokenize
        self.paragraphs: dict[str, list[str]] = {}
        for e in examples:
            paras = self.paragraphs.setdefault(e["title"], [])
            if e["context"] not in paras:
                paras.append(e["context"])
        self._words = {c: set(tokenize(c)) for paras in self.paragraphs.values() for c in paras}

    def rank(self, example: dict[str, Any], k: int) -> list[str]:
        """Up to ``k`` paragraphs of the example's article other than its own, none holding one of
        its answers (case-insensitively), most shared words first."""
        answers = {t.lower() for t, _ in example["answers"] if t.strip()}
        q = set(self._tokenize(example["question"]))
        keyed = [((-len(q & self._words[c]), len(c)), n, c) for n, c in enumerate(self.paragraphs[example["title"]])
                 if c != example["context"] and not any(a in c.lower() for a in answers)]
        return [c for _, _, c in sorted(keyed)[:k]]


def context_negatives(examples: Sequence[dict[str, Any]], fraction: float, *, seed: int,
                      near: NearMisses | None = None, flag: str = "--context-negatives") -> list[dict[str, Any]]:
    """Unanswerable questions made from answerable ones: the question paired with its nearest miss
    (``NearMisses``: the paragraph of its own article that shares the most of its words and holds
    none of its answers). Trained as "no answer", such pairs teach the reader to keep its span
    scores low on the on-topic passages retrieval hands it, which joint normalisation over the
    retrieved passages (``rag.readers.neural``) compares with the passage that does answer.

    ``fraction`` of the answerable questions (drawn with ``seed``) get one such negative; a question
    whose article has no other paragraph free of its answers gets none. Ids are ``neg:<id>``.

    ``near``: the paragraphs to draw near misses from, where ``examples`` are not all of them (the
    reworded questions of ``rag.train.paraphrases`` cover a few of the training split's paragraphs:
    their near misses come from all of it). ``flag`` names the option in the error a bad fraction
    gets, and seeds the draw, so that two kinds of negatives drawn with one seed differ."""
    if not fraction > 0:
        raise InputError(f"{flag} must be above 0 (e.g. 0.3), got {fraction:g}")
    near = near or NearMisses(examples)
    answerable = [e for e in examples if not e["impossible"]]
    rng = random.Random(f"{seed}/{flag.lstrip('-')}")
    out = []
    for e in rng.sample(answerable, min(len(answerable), round(fraction * len(answerable)))):
        for c in near.rank(e, 1):
            out.append({"id": f"neg:{e['id']}", "title": e["title"], "question": e["question"], "context": c,
                        "answers": [], "impossible": True})
    return out


# Words that state how many of something there are: a plural noun with one of these (or digits)
# among the four words before it is counted in the paragraph, so "how many" of it may be answerable.
_QUANTITY_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred hundreds "
    "thousand thousands million millions billion billions dozen dozens several few many some both all "
    "most no numerous multiple couple half more fewer less dozens score scores".split())
# Plural nouns too vague to make a question about something else ("how many times" is still
# answered by the same figure as often as not).
_VAGUE_NOUNS = frozenset(
    "times years days months weeks hours minutes seconds ones others things ways people persons parts kinds "
    "types sorts members units cases numbers percent instances items examples terms".split())
# "How <measure> ...": the measure, and the words a paragraph that states it would use. A swap
# goes to a measure none of whose words occurs in the paragraph.
_MEASURES = {
    "far": r"far|farther|further|distance|distances|away|range|km|kms|kilometres?|kilometers?|miles?|metres?|meters?",
    "fast": r"fast|faster|fastest|speed|speeds|velocity|mph|km/h|kmh|kph|knots?|mach|per hour|an hour|per second|rpm",
    "high": r"high|higher|highest|tall|taller|height|altitude|altitudes|elevation|feet|foot|ft|metres?|meters?|storeys?|floors",
    "heavy": r"heavy|heavier|weighs?|weighed|weight|weighing|kg|kilograms?|grams?|tons?|tonnes?|pounds?|lbs?|ounces?",
    "deep": r"deep|deeper|depth|depths|below|feet|foot|ft|metres?|meters?|fathoms?",
    "old": r"old|older|oldest|age|aged|ages|born|birth|year-old|years? old",
}
_MEASURE_CUES = {m: re.compile(r"(?<![\w/])(?:" + cues + r")(?![\w/])", re.I) for m, cues in _MEASURES.items()}
# Asked-for measures with a near synonym among ``_MEASURES``, which a swap must not go to.
_SAME_MEASURE = {"tall": "high", "long": "far", "wide": "far", "high": "tall"}
_HOW_MEASURE = re.compile(r"\bhow (" + "|".join([*_MEASURES, "tall", "long", "wide"]) + r")\b", re.I)
_HOW_MUCH = re.compile(r"\bhow much\b", re.I)


def asks_figure(question: str) -> bool:
    """True for a "how many ...", "how much ..." or "how far / fast / high / heavy / deep / old /
    tall / long / wide ..." question: one answered by a figure, where a paragraph's other figures
    make near misses (the count and measure kinds are those ``swap_negatives`` swaps)."""
    return bool(expects_count(question) or _HOW_MUCH.search(question) or _HOW_MEASURE.search(question))


def _counted(tok) -> bool:
    """True when the paragraph states a number of ``tok`` (a spaCy token, a plural noun) here."""
    doc = tok.doc
    if any(t.like_num or t.pos_ == "NUM" or t.lower_ in _QUANTITY_WORDS for t in doc[max(0, tok.i - 4):tok.i]):
        return True
    return any(c.dep_ in ("nummod", "quantmod") for c in tok.children)


def _counted_head(question_doc):
    """The plural noun a "how many" question counts ("pilots" in "How many Turkish pilots ..."), or None."""
    for t in question_doc:
        if (t.lower_ == "many" and t.i > 0 and question_doc[t.i - 1].lower_ == "how"
                and t.head.tag_ == "NNS" and t.head.is_alpha):
            return t.head
    return None


def swap_negatives(examples: Sequence[dict[str, Any]], per_question: int, *, seed: int, nlp=None,
                   embed=None, max_similarity: float = 0.5) -> list[dict[str, Any]]:
    """Unanswerable questions made by swapping what an answerable question asks for, read with its
    own paragraph (see the module docstring), up to ``per_question`` different swaps of each
    question (drawn with ``seed``; ids ``swap:<id>:<n>``):

    * "how many <noun>": the counted noun becomes a plural noun of the paragraph that no number
      counts there (none of digits, a number word, "several", ... among the four words before it;
      no numeric modifier), is not among the question's words or in its answers, and is not a
      near synonym of the noun it replaces (cosine of their ``embed`` vectors at most
      ``max_similarity``: "residents" for "people" would still be answered by the same figure).
    * "how far / fast / high / heavy / deep / old" (or "tall", "long", "wide"): the measure becomes
      another of the six, not its near synonym, that the paragraph has no word for (``_MEASURES``:
      "fast" needs no "speed", "mph", "km/h", ... in it).

    ``nlp``: a spaCy pipeline (default ``rag.analysis.get_nlp()``); ``embed``: texts -> vectors
    (default the index's embedder, ``rag.embedding.Embedder().encode``)."""
    if isinstance(per_question, bool) or not isinstance(per_question, int) or per_question < 1:
        raise InputError(f"--swap-negatives is how many swaps of each question to make, 1 or more (e.g. 3), "
                         f"got {per_question!r}")
    import numpy as np

    if nlp is None:
        from ..analysis import get_nlp

        nlp = get_nlp()
    rng = random.Random(f"{seed}/swap-negatives")
    answerable = [e for e in examples if not e["impossible"]]
    options: list[tuple[dict[str, Any], int, int, str, list[str]]] = []  # example, span to replace, old, new ones

    counts = [e for e in answerable if expects_count(e["question"])]
    for e, qd, cd in zip(counts, nlp.pipe(e["question"] for e in counts), nlp.pipe(e["context"] for e in counts)):
        head = _counted_head(qd)
        if head is None or head.lower_ in _VAGUE_NOUNS:
            continue
        asked = {t.lemma_.lower() for t in qd} | {t.lower_ for t in qd}
        answers = " ".join(a for a, _ in e["answers"]).lower()
        seen: dict[str, bool] = {}
        for t in cd:
            if t.tag_ != "NNS" or not t.is_alpha or len(t.text) < 4 or t.lower_ in _VAGUE_NOUNS:
                continue
            if t.lemma_.lower() in asked or t.lower_ in asked or t.lower_ in answers:
                continue
            seen[t.lower_] = seen.get(t.lower_, False) or _counted(t)
        free = sorted(w for w, counted in seen.items() if not counted)
        if free:
            options.append((e, head.idx, head.idx + len(head.text), head.lower_, free))
    if options:
        if embed is None:
            from ..embedding import Embedder

            embed = Embedder().encode
        words = sorted({w for *_, old, new in options for w in (old, *new)})
        vecs = np.asarray(embed(words), dtype=np.float32)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        at = {w: i for i, w in enumerate(words)}
        options = [(e, lo, hi, old, [w for w in new if float(vecs[at[old]] @ vecs[at[w]]) <= max_similarity])
                   for e, lo, hi, old, new in options]
    for e in answerable:
        m = _HOW_MEASURE.search(e["question"])
        if m is None or expects_count(e["question"]):
            continue
        asked = m.group(1).lower()
        free = [x for x in _MEASURES if x not in (asked, _SAME_MEASURE.get(asked))
                and not _MEASURE_CUES[x].search(e["context"])]
        options.append((e, m.start(1), m.end(1), asked, free))

    out: list[dict[str, Any]] = []
    for e, lo, hi, _old, new in options:
        for n, word in enumerate(rng.sample(new, min(per_question, len(new)))):
            out.append({"id": f"swap:{e['id']}:{n}", "title": e["title"],
                        "question": e["question"][:lo] + word + e["question"][hi:], "context": e["context"],
                        "answers": [], "impossible": True})
    return out
