"""From retrieved passages to an Answer: reader spans, merged sources, alternatives, abstention.

Readers (``rag.readers``) propose scored spans. This module does what is the same for every
reader: it groups spans that say the same thing (normalised text), so one answer carries every
supporting citation and a higher score; it reports answers from other sources that disagree as
``alternatives``; it picks the evidence sentence around the span; and it abstains (``text=None``)
when the best score is under the threshold chosen on the gold dev split, or, before any reader
runs, when the question names something no indexed article mentions (``unknown_names``).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .readers.base import Reader, ReaderOutput, SpanCandidate
from .readers.registry import make_reader
from .readers.settings import Calibrator, SettingKey, Tuning, load_reader_settings, setting_key, sweep_tunings
from .schema import Answer, Passage
from .sentences import split_sentences
from .windows import check_windows, cite, reading_windows

DEFAULT_THRESHOLD = 0.5
# Confidence of an abstention for an unknown name: on the gold dev split 13 of the 16 questions
# this gate stops are unanswerable (chrome-only and off-topic facts; the 3 others say "Kremlin").
NAME_GATE_CONFIDENCE = 0.8
# Another article's best figure of the answer's kind is shown as a disagreeing source down to a
# quarter of the abstention threshold, capped at this calibrated chance of being right.
TYPED_ALTERNATIVE_MAX_FLOOR = 0.1
_WORD = re.compile(r"[A-Za-z][\w\-']*")


def unknown_names(question: str, lexical) -> list[str]:
    """Capitalised words of the question (after its first word) that no indexed chunk contains.

    A question about "Oshkosh JLTVs" or "Malaysia" when no article body mentions them is not in
    these articles, whatever a reader finds (the page chrome that mentions them is never indexed).
    Checked against the lexical index's vocabulary (``LexicalIndex.knows``), so it costs a few
    dictionary look-ups. A name whose other name is known counts as known (``rag.aliases``: "the
    Kremlin" when the articles say Moscow); the price is that a name the articles only paraphrase
    in some other way still abstains.
    """
    from .aliases import alias_matches
    from .lexical import normalize_text

    words = [m.group().strip("'-") for m in _WORD.finditer(normalize_text(question))]
    # A name is known when one of its other names is ("the Kremlin" when the articles say Moscow).
    known_as: set[int] = set()
    for start, end, found in alias_matches(words):
        if any(lexical.knows(a) for alias in found for a in alias.split()):
            known_as.update(range(start, end))
    out: list[str] = []
    for i, w in enumerate(words):
        if i == 0 or i in known_as:
            continue
        if w[:1].isupper() and w not in out and not lexical.knows(w):
            out.append(w)
    return out


_HOW_MANY = re.compile(r"\bhow many\b", re.I)
_COUNT = re.compile(
    r"(?<![\w-])\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|"
    r"ninety|hundreds?|thousands?|millions?|billions?|trillions?|dozens?|several|few|many|multiple|numerous|"
    r"half|single|once|twice|thrice|both|all|none|zero|majority|minority|countless|couple)\b", re.I)


def expects_count(question: str) -> bool:
    """A "how many" question: answered by a count, never by a name or a phrase without one."""
    return bool(_HOW_MANY.search(question))


def has_count(text: str) -> bool:
    """True when ``text`` states a number: digits (not those of a name like "S-400") or a number word.

    Of the 1,587 answered "how many" questions in the SQuAD pool, 8 have no answer with one
    ("unmanned", "letters", "third", "a number of years", ...).
    """
    return bool(_COUNT.search(text))


_MONEY = re.compile(r"[$\u20ac\u00a3\u00a5\u20bd]|\b(?:dollars?|euros?|roubles?|rubles?|lira|pounds?|yuan|yen)\b", re.I)
_PERCENT = re.compile(r"%|\bper ?cent\b", re.I)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DATE = re.compile(r"\b(?:" + "|".join(_MONTHS) + r")\b|(?<![\w-])(?:1[89]|20)\d\d(?:s(?!\w)|(?!\w))")
_DIGIT = re.compile(r"(?<![\w-])\d")


def figure_kind(text: str) -> str | None:
    """"money", "percent", "date" or "number" when ``text`` states a figure of that kind (the digits
    of a name like "S-400" do not count), else None: the answer kind of a reader that has none of
    its own, so that two articles' figures can be shown as disagreeing."""
    if _MONEY.search(text) and _DIGIT.search(text):
        return "money"
    if _PERCENT.search(text) and _DIGIT.search(text):
        return "percent"
    if _DATE.search(text):
        return "date"
    return "number" if _DIGIT.search(text) else None


_MONTH_DATE = re.compile(
    r"(?:(?<![\w-])(?P<d1>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?)?\b(?P<m>" + "|".join(_MONTHS) + r")\b"
    r"(?:\s+(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?\b)?(?:,?\s+(?:of\s+)?(?P<y>(?:1[89]|20)\d\d)\b)?")


def month_dates(text: str) -> list[tuple[int | None, int, int | None]]:
    """The (day, month, year) of each date in ``text`` that names a month ("July 12, 2019", "12 July
    2019", "July 2019", "March 29"); a part the text leaves out is None."""
    out = []
    for m in _MONTH_DATE.finditer(text):
        day = m.group("d1") or m.group("d2")
        d = int(day) if day and 1 <= int(day) <= 31 else None
        out.append((d, _MONTHS.index(m.group("m")) + 1, int(m.group("y")) if m.group("y") else None))
    return out


def dates_agree(answer: str, other: str) -> bool:
    """Whether ``other`` states a date that the answer's date refines or repeats: the same month,
    and the same day and year wherever both give one ("July 2019" agrees with "July 12, 2019";
    "October", "July 2018" and "end of 2019" do not). Such a span says what the answer says, less
    precisely, so it is not a source that disagrees."""
    mine = month_dates(answer)
    return bool(mine) and any(
        m1 == m2 and (d1 is None or d2 is None or d1 == d2) and (y1 is None or y2 is None or y1 == y2)
        for d1, m1, y1 in mine for d2, m2, y2 in month_dates(other))


def normalize(text: str) -> str:
    """The SQuAD answer normalisation (Unicode-aware), used to decide that two spans agree."""
    from .eval.metrics import normalize_answer

    return normalize_answer(text)


def evidence_for(passage: Passage, start: int, end: int) -> Passage:
    """The sentence(s) of ``passage`` that hold the span ``start:end`` (absolute offsets)."""
    sents = split_sentences(passage.text)
    rel_s, rel_e = start - passage.start, end - passage.start
    covering = [(a, b) for a, b in sents if a < rel_e and b > rel_s] or [(0, len(passage.text))]
    a, b = covering[0][0], covering[-1][1]
    return Passage(doc_id=passage.doc_id, title=passage.title, text=passage.text[a:b],
                   start=passage.start + a, end=passage.start + b, score=passage.score,
                   chunk_id=passage.chunk_id)


@dataclass
class _Group:
    key: str
    members: list[SpanCandidate]

    @property
    def best(self) -> SpanCandidate:
        return self.members[0]

    @property
    def score(self) -> float:
        """The best span's score, raised by support from other documents (dampened noisy-or)."""
        best = self.best.score
        others = {}
        for m in self.members[1:]:
            if m.doc_id != self.best.doc_id:
                others[m.doc_id] = max(others.get(m.doc_id, 0.0), m.score)
        miss = 1.0 - best
        for s in others.values():
            miss *= 1.0 - 0.5 * s
        return 1.0 - miss

    def citations(self) -> list[Passage]:
        seen, out = set(), []
        for m in self.members:
            key = m.passage.chunk_id or (m.passage.doc_id, m.passage.start)
            if key not in seen:
                seen.add(key)
                out.append(m.passage)
        return out


def group_candidates(candidates: Sequence[SpanCandidate]) -> list[_Group]:
    """Spans with the same normalised text, best group first."""
    groups: dict[str, _Group] = {}
    for c in sorted(candidates, key=lambda c: -c.score):
        key = normalize(c.text) or c.text.strip().lower()
        if not key:
            continue
        if key in groups:
            groups[key].members.append(c)
        else:
            groups[key] = _Group(key, [c])
    return sorted(groups.values(), key=lambda g: -g.score)


def _fragment_of(key: str, answer_key: str) -> bool:
    """Whether one normalised span is a run of whole words inside the other (either way round)."""
    a, b = f" {key} ", f" {answer_key} "
    return a in b or b in a


class Answerer:
    """Turns a question into an Answer with one reader over the QA object's retriever."""

    def __init__(self, retriever, reader: Reader, *, threshold: float = DEFAULT_THRESHOLD,
                 calibrator: Calibrator | None = None, alt_ratio: float = 0.6, name_gate: bool = True,
                 k: int | None = None, context: int = 0, windows: str = "merged",
                 tunings: dict[SettingKey, Tuning] | None = None, count_rule: bool = True) -> None:
        self.retriever = retriever
        self.k = k  # passages this reader reads per question when the caller gives none (tuned on dev)
        # characters of neighbouring text the reader reads on each side of a passage (rag.windows; tuned on dev)
        self.context = context
        self.windows = check_windows(windows)  # how those windows are laid out (rag.windows; tuned on dev)
        self.reader = reader
        self.name_gate = name_gate  # abstain on a question naming what no article mentions (unknown_names)
        self.count_rule = count_rule  # a "how many" question is answered by a span holding a count, or not at all
        self.threshold = threshold
        self.calibrator = calibrator or Calibrator()
        self.alt_ratio = alt_ratio
        # The setting ``calibrator`` and ``threshold`` were tuned at (None: no tuned k), and the other
        # settings of the reader's dev sweep with their own (``tuning``).
        self.chosen: SettingKey | None = setting_key(k, context, self.windows) if k else None
        self.tunings: dict[SettingKey, Tuning] = dict(tunings or {})

    @classmethod
    def create(cls, retriever, *, reader: object = None, threshold: float | None = None) -> "Answerer":
        """The answerer over ``retriever`` (its index and embedder build the reader) with ``reader``'s
        tuned calibration, threshold, k and reading context and windows, and the calibrations of the
        other settings its dev sweep tried (``threshold`` overrides every tuned threshold)."""
        rd = make_reader(reader, retriever.index, retriever.embedder)
        settings = load_reader_settings(rd.name)
        cal = settings.get("calibration")
        calibrator = Calibrator(cal["a"], cal["b"], cal.get("identity", False)) if cal else None
        th = threshold if threshold is not None else settings.get("threshold", DEFAULT_THRESHOLD)
        tunings = sweep_tunings(settings)
        if threshold is not None:
            tunings = {key: replace(t, threshold=threshold) for key, t in tunings.items()}
        k = settings.get("k")
        return cls(retriever, rd, threshold=th, calibrator=calibrator, k=int(k) if k else None,
                   context=int(settings.get("context", 0)), windows=settings.get("windows", "merged"),
                   tunings=tunings)

    def tuning(self, k: int) -> Tuning:
        """The calibration and abstention threshold for reading ``k`` passages at the answerer's
        context and windows: the tuned ones (``calibrator``, ``threshold``) at the setting they were
        tuned for, that setting's own from the reader's dev sweep at another one it tried, and the
        tuned ones, marked "untuned", at a setting dev never saw."""
        key = setting_key(k, self.context, self.windows)
        if self.chosen is None or key == self.chosen:
            return Tuning(self.calibrator, self.threshold, "chosen")
        row = self.tunings.get(key)
        return row if row is not None else Tuning(self.calibrator, self.threshold, "untuned")

    def answer_many(self, questions: list[str], *, k: int, mode: str,
                    threshold: float | None = None) -> list[Answer]:
        tuned = self.tuning(k)
        th = tuned.threshold if threshold is None else threshold
        qvecs = self.retriever.encode(questions) if mode != "bm25" or self.reader.uses_vectors else None
        hits = self.retriever.search_many(questions, k, mode, qvecs)
        lexical = getattr(getattr(self.retriever, "index", None), "lexical", None) if self.name_gate else None
        out = []
        for i, (q, passages) in enumerate(zip(questions, hits)):
            names = unknown_names(q, lexical) if lexical is not None else []
            if names:
                out.append(Answer(text=None, score=NAME_GATE_CONFIDENCE, citations=passages, question=q,
                                  reader=self.reader.name,
                                  reason="no article mentions " + ", ".join(f"'{n}'" for n in names)))
                continue
            qvec = qvecs[i] if self.reader.uses_vectors else None
            result: ReaderOutput = self.read(q, passages, qvec)
            # Read widened, one article's confident window can squash another's figure below any
            # floor: rival figures are then looked for as each passage reads alone (one more forward,
            # only when the answer is a figure: "$2.5 billion" in 001 beside 000's "$2 billion").
            plain = ((lambda q=q, passages=passages, qvec=qvec: self.reader.read(q, passages, qvec))
                     if self.context else None)
            out.append(self.decide(q, passages, result, th, plain_read=plain, calibrator=tuned.calibrator))
        return out

    def read(self, question: str, passages: list[Passage], qvec=None) -> ReaderOutput:
        """The reader's output for ``passages``; with a reading ``context`` the reader reads them
        widened into their neighbouring text and its spans cite the passages (``rag.windows``)."""
        read = self.reading(passages)
        result = self.reader.read(question, read, qvec)
        if read is passages:
            return result
        return replace(result, candidates=cite(result.candidates, passages, self.retriever.index))

    def reading(self, passages: list[Passage]) -> list[Passage]:
        """What the reader reads for ``passages``: with a reading ``context`` (and an index to
        widen them in), their reading windows (``rag.windows``); otherwise ``passages`` itself."""
        index = getattr(self.retriever, "index", None)
        if not self.context or index is None:
            return passages
        return reading_windows(passages, index, self.context, self.windows)

    def decide(self, question: str, passages: list[Passage], result: ReaderOutput, threshold: float,
               plain_read=None, calibrator: Calibrator | None = None) -> Answer:
        """The answer (or abstention) from the reader's ``result``. ``plain_read``: for a result read
        through reading windows, a call that reads the passages as they are, whose spans are the
        rivals of a figure answer (the alternatives). ``calibrator``: the reading setting's
        (``tuning``); by default the answerer's."""
        cal = calibrator or self.calibrator
        groups = group_candidates(result.candidates)
        name = self.reader.name
        if not groups:
            return Answer(text=None, score=1.0, citations=passages, question=question, reader=name)
        if self.count_rule and expects_count(question):
            counts = [g for g in groups if has_count(g.best.text)]
            if not counts:
                return Answer(text=None, score=1.0 - cal(groups[0].score), citations=passages,
                              question=question, reader=name,
                              reason="no number in the passages answers this 'how many' question")
            groups = counts
        best = groups[0]
        score = cal(best.score)
        if score < threshold:
            return Answer(text=None, score=1.0 - score, citations=passages, question=question, reader=name)
        alternatives = []
        best_docs = {m.doc_id for m in best.members}
        kind = best.best.features.get("kind")
        # A reader without answer kinds (a plain neural one): the kind of figure the answer states.
        figure = figure_kind(best.best.text) if kind is None else None
        rivals = groups[1:]
        if plain_read is not None and figure is not None:
            plain = [g for g in group_candidates(plain_read().candidates) if g.key != best.key]
            rivals = [g for g in plain if has_count(g.best.text)] if expects_count(question) else plain
        typed_seen: set[str] = set()  # articles whose best typed answer was already considered
        # A quarter of the threshold, and never more than a 1-in-10 calibrated chance of being right:
        # a high threshold, set to refuse near misses, must not hide another article's figure.
        typed_floor = min(0.25 * threshold, TYPED_ALTERNATIVE_MAX_FLOOR)
        for g in rivals:
            s = cal(g.score)
            docs = {m.doc_id for m in g.members}
            if kind is not None and g.best.features.get("kind") != kind:
                continue
            if docs <= best_docs:
                continue  # the same article saying two things is a candidate list, not a disagreement
            if _fragment_of(g.key, best.key):
                continue  # "billion" beside "$2 billion" is a piece of the answer, not a rival figure
            if dates_agree(best.best.text, g.best.text):
                # "July 2019" beside "July 12, 2019" says the same, less precisely; and that article's
                # answer is this one, so its lesser figures ("2017", when it ordered) are not rivals.
                typed_seen |= docs
                continue
            # A rival of the same kind from another article is worth showing a little below the
            # answer threshold: it is labelled as a disagreement, with its own confidence. Also
            # each other article's best span of the question's expected type (``type_match``)
            # down to ``typed_floor``: a joint softmax over all passages squashes the
            # figure of a less confident article, which must not hide it.
            # For a reader without kinds, each other article's best figure of the answer's kind.
            f = g.best.features
            if kind is None:
                same_kind = figure is not None and figure_kind(g.best.text) == figure
            else:
                same_kind = f.get("type_match", 0.0) >= 1.0 and kind != 0.0
            typed = same_kind and not (docs & typed_seen)
            if typed:
                typed_seen |= docs
            if s >= max(0.75 * threshold, self.alt_ratio * score) or (typed and s >= typed_floor):
                alternatives.append(self._answer(question, g, s, name))
        return self._answer(question, best, score, name, alternatives)

    @staticmethod
    def _answer(question: str, group: _Group, score: float, reader: str,
                alternatives: list[Answer] | None = None) -> Answer:
        c = group.best
        return Answer(text=c.text, score=score, doc_id=c.doc_id, start=c.start, end=c.end,
                      evidence=evidence_for(c.passage, c.start, c.end), citations=group.citations(),
                      alternatives=alternatives or [], question=question, reader=reader)
