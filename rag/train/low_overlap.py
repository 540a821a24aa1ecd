"""Answerable training questions that share few words with their answer's sentence, trained twice.

A paraphrased question ("What is holding Washington back from penalising Ankara?" over "the US
has not imposed sanctions on Turkey out of fear of ...") shares almost none of its words with the
sentence that answers it. On the gold dev split the paraphrased questions' median share of words
found in the answer's sentence is 0.14 and a quarter share none, against 0.57 for SQuAD's training
questions, only a tenth of which share under 0.2. A reader trained on SQuAD with many
unanswerable questions learns that a question whose words the paragraph lacks has no answer
there, and refuses the paraphrase. ``low_overlap_copies`` adds the answerable training
questions with the least overlap once more (ids ``low:<id>``), so they weigh twice.

Questions asking for a figure ("how many ...", "how much ...", "how far ...") are never copied.
For them, a question whose words its answer's sentence lacks is the near miss the swapped
negatives (``rag.train.negatives.swap_negatives``) teach the reader to refuse: "How many Turkish
pilots are training on the F-35?" over a sentence about the 100 jets Turkey ordered. Copying them
taught the opposite (the tenth session's stage 12 answered "100" again, at 0.79 for the pilots and
0.76 for "How much does one F-35 jet ordered by Turkey cost?"). Without them the copies still
cost gold dev F1 (stage 13, 0.647 against 0.681; ``evals/README.md``, eleventh session), so the
shipped recipe does not use ``--low-overlap``.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from .negatives import asks_figure


def answer_sentence(context: str, start: int) -> str:
    """The sentence of ``context`` holding the character at ``start`` (``rag.sentences.split_sentences``,
    the chunker's and the evidence quote's splitter)."""
    from ..sentences import split_sentences

    for a, b in split_sentences(context):
        if start < b:
            return context[a:b]
    return context


def overlap(question: str, sentence: str) -> float:
    """The share of the question's words (``rag.lexical.tokenize``: stemmed, no stopwords) that
    occur in ``sentence``; 1.0 for a question with no such words."""
    from ..lexical import tokenize

    q = set(tokenize(question))
    if not q:
        return 1.0
    return len(q & set(tokenize(sentence))) / len(q)


def low_overlap_copies(examples: Sequence[dict[str, Any]], fraction: float, *,
                       seed: int) -> list[dict[str, Any]]:
    """Copies of the ``fraction`` of answerable ``examples`` (figure questions left out: ``asks_figure``)
    whose questions share the fewest words with their first answer's sentence (``overlap``; ties
    broken with ``seed``), ids ``low:<id>``."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise InputError(f"--low-overlap is the share of answerable training questions to train twice, "
                         f"above 0 and at most 1 (e.g. 0.25), got {fraction!r}")
    answerable = [e for e in examples
                  if not e["impossible"] and e["answers"] and not asks_figure(e["question"])]
    rng = random.Random(f"{seed}/low-overlap")
    keyed = [(overlap(e["question"], answer_sentence(e["context"], e["answers"][0][1])), rng.random(), n)
             for n, e in enumerate(answerable)]
    keyed.sort()
    take = round(fraction * len(answerable))
    return [{**answerable[n], "id": f"low:{answerable[n]['id']}"} for _, _, n in keyed[:take]]
