"""The feature-based reader: typed candidate spans scored by visible features (pre-neural QA).

For each retrieved passage it looks at the analysed sentences (``rag.analysis``), proposes
candidate spans (named entities, noun chunks, nominal phrases with their prepositional
complements, numbers with their units, proper-noun runs), and scores each with a logistic model
over named features:

  type_match / type_clash   the candidate's entity type against the type the question expects
  target_head               the candidate is headed by the noun of "what|which X"
  sent_overlap, sent_cos    how well its sentence matches the question (IDF lemma overlap; cosine)
  sent_rank                 that sentence's rank among all candidate sentences
  proximity                 closeness to the question's words matched in the sentence
  syn_link, syn_role        dependency link to a matched word / the question's verb, and its role
  q_overlap                 how much of the candidate the question already says (penalised)
  passage_rank, passage_score   where retrieval put its passage
  support                   how many other sentences propose the same answer

The weights come from ``rag/models/features_settings.json`` (fitted by
``python -m rag.train.features``); ``DEFAULT_WEIGHTS`` are used when it is absent.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..analysis import Sentence, analyze_spans, get_nlp
from ..lexical import STOPWORDS, normalize_text
from ..schema import Passage
from ..sentences import split_sentences
from .base import ReaderOutput, SpanCandidate

FEATURES = ("bias", "type_match", "type_clash", "target_head", "is_entity", "sent_overlap", "sent_cos",
            "sent_rank", "proximity", "syn_link", "syn_role", "q_overlap", "passage_rank", "passage_score",
            "support", "length", "too_long")

# Hand-set starting weights (used only without a fitted settings file).
DEFAULT_WEIGHTS = {
    "bias": -4.0, "type_match": 1.6, "type_clash": -1.5, "target_head": 1.0, "is_entity": 0.3,
    "sent_overlap": 2.5, "sent_cos": 2.0, "sent_rank": 1.5, "proximity": 1.0, "syn_link": 0.6,
    "syn_role": 0.3, "q_overlap": -2.5, "passage_rank": 0.5, "passage_score": 0.3, "support": 0.5,
    "length": -0.3, "too_long": -1.0,
}

PERSON, ORG, NORP, GPE, LOC, FAC = "PERSON", "ORG", "NORP", "GPE", "LOC", "FAC"
DATE, TIME, CARDINAL, QUANTITY, MONEY, PERCENT = "DATE", "TIME", "CARDINAL", "QUANTITY", "MONEY", "PERCENT"
NUMERIC = {DATE, TIME, CARDINAL, QUANTITY, MONEY, PERCENT, "ORDINAL"}

# "what|which X" -> the entity types an X is.
TARGET_TYPES = {
    **dict.fromkeys("company firm agency organisation organization bureau outlet channel service alliance "
                    "administration government house manufacturer maker exporter body group party newspaper "
                    "media agency militia institution ministry department network bank".split(), {ORG, NORP}),
    **dict.fromkeys("city country capital region place state town province nation location area".split(),
                    {GPE, LOC, FAC}),
    **dict.fromkeys("year month day date decade century time deadline period season week".split(), {DATE, TIME}),
    **dict.fromkeys("president leader minister official head chief person man woman ceo director spokesman "
                    "spokesperson diplomat general commander politician founder author".split(), {PERSON}),
    **dict.fromkeys("nationality ethnicity religion".split(), {NORP}),
    **dict.fromkeys("price value cost amount sum worth budget fee".split(), {MONEY, CARDINAL}),
    **dict.fromkeys("distance range altitude height length weight speed size depth".split(), {QUANTITY}),
    **dict.fromkeys("number count".split(), {CARDINAL, QUANTITY}),
    **dict.fromkeys("percentage percent share".split(), {PERCENT}),
    **dict.fromkeys("show event exhibition conference summit war battle".split(), {"EVENT", ORG}),
    **dict.fromkeys("law act legislation treaty bill".split(), {"LAW"}),
    **dict.fromkeys("language".split(), {"LANGUAGE"}),
}
WH_WORDS = {"who", "whom", "whose", "when", "where", "what", "which", "how", "why"}
_NOMINAL_DEPS = {"nsubj", "nsubjpass", "dobj", "pobj", "attr", "appos", "npadvmod", "conj", "oprd", "dative",
                 "compound", "ROOT"}
_ROLE_DEPS = {"nsubj", "nsubjpass", "dobj", "pobj", "attr", "appos"}
_EDGE_POS = {"ADP", "CCONJ", "SCONJ", "PUNCT", "PART", "AUX", "DET", "PRON", "SPACE"}
_QUOTES = "'\"\u2018\u2019\u201c\u201d()[],;:.-"
MAX_CAND_TOKENS = 14


@dataclass(frozen=True)
class QuestionInfo:
    text: str
    lemmas: frozenset[str]  # content lemmas
    verbs: frozenset[str]
    wh: str
    expected: frozenset[str]  # entity labels; empty = a description (phrase) answer
    target: str | None  # X of "what|which X"


def expected_types(question: str) -> tuple[str, frozenset[str], str | None]:
    """(wh word, expected entity labels, target noun) from the question's wording and parse."""
    return _expected_types(normalize_text(question))


@lru_cache(maxsize=4096)
def _expected_types(question: str) -> tuple[str, frozenset[str], str | None]:
    q = question.lower()
    words = re.findall(r"[a-z0-9']+", q)
    wh = next((w for w in words if w in WH_WORDS), "")
    def after(word: str, n: int = 3) -> list[str]:
        if word not in words:
            return []
        i = words.index(word)
        return words[i + 1:i + 1 + n]
    if re.search(r"\bhow (many|much of)\b", q):
        return wh, frozenset({CARDINAL, QUANTITY}), None
    if re.search(r"\bhow much\b", q):
        return wh, frozenset({MONEY, QUANTITY, CARDINAL, PERCENT}), None
    if re.search(r"\b(worth|cost|costs|price|priced|valued|value|paid|pay|spend|spent)\b", q) and wh in ("what", "how", ""):
        return wh, frozenset({MONEY, CARDINAL}), None
    if re.search(r"\bhow (far|high|long|big|large|heavy|fast|deep|tall|wide)\b", q):
        return wh, frozenset({QUANTITY, DATE, TIME, CARDINAL}), None
    if re.search(r"\b(what|which) (year|month|day|date|decade|century)\b", q) or wh == "when":
        return wh, frozenset({DATE, TIME}), None
    if wh in ("who", "whom") or wh == "whose":
        return wh, frozenset({PERSON, ORG, NORP}), None
    if wh == "where":
        return wh, frozenset({GPE, LOC, FAC, ORG}), None
    if wh in ("what", "which"):
        target = _target_noun(question)
        if target:
            return wh, frozenset(TARGET_TYPES.get(target, set())), target
    return wh, frozenset(), None


@lru_cache(maxsize=1024)
def _parse(question: str):
    """The spaCy parse of a (normalised) question, computed once per question.

    Without the entity recogniser: nothing reads a question's entities, and skipping it halves
    the parse time (tags, lemmas and dependencies are identical; checked on the gold questions).
    """
    return get_nlp()(question, disable=["ner"])


def _target_noun(question: str) -> str | None:
    """The noun X of "what|which (adj)* X" (lemma), e.g. "Which Russian engineering house" -> house."""
    doc = _parse(question)
    for t in doc:
        # "what was the value of ...": the copula's other argument names the answer's kind.
        if t.lower_ in ("what", "which") and t.dep_ in ("attr", "nsubj") and t.head.lemma_ == "be":
            other = [c for c in t.head.children if c.dep_ in ("nsubj", "attr") and c.i != t.i
                     and c.pos_ in ("NOUN", "PROPN")]
            if other:
                return other[0].lemma_.lower()
    for t in doc:
        if t.lower_ in ("what", "which") and t.dep_ in ("det", "attr", "nsubj", "dobj", "pobj") or (
                t.lower_ in ("what", "which") and t.head.pos_ in ("NOUN", "PROPN") and t.head.i > t.i):
            if t.head.pos_ in ("NOUN", "PROPN") and t.head.i > t.i:
                return t.head.lemma_.lower()
            # "what kind/type/sort of X" and "which of the X"
            nxt = [x for x in doc[t.i + 1:t.i + 5] if x.pos_ in ("NOUN", "PROPN")]
            if nxt and t.dep_ == "det":
                return nxt[0].lemma_.lower()
    # Fallback: the last noun between "what|which" and the first verb ("Which Kremlin leader agreed").
    for t in doc:
        if t.lower_ in ("what", "which"):
            nouns = []
            for x in doc[t.i + 1:t.i + 6]:
                if x.pos_ in ("VERB", "AUX") or x.dep_ == "prep":
                    break
                if x.pos_ in ("NOUN", "PROPN"):
                    nouns.append(x)
            if nouns:
                return nouns[-1].lemma_.lower()
    return None


def analyze_question(question: str) -> QuestionInfo:
    wh, expected, target = expected_types(question)
    doc = _parse(normalize_text(question))
    lemmas = {t.lemma_.lower() for t in doc if not t.is_punct and t.lemma_.lower() not in STOPWORDS
              and t.lower_ not in WH_WORDS and t.lemma_.lower() not in STOPWORDS}
    verbs = {t.lemma_.lower() for t in doc if t.pos_ == "VERB" and t.lemma_.lower() not in STOPWORDS}
    return QuestionInfo(question, frozenset(lemmas), frozenset(verbs), wh, expected, target)


@dataclass
class _Cand:
    sent: Sentence
    a: int  # first token index
    b: int  # one past the last token index
    label: str
    passage: Passage
    passage_rank: int
    feats: dict[str, float] = field(default_factory=dict)

    @property
    def start(self) -> int:
        return self.sent.tokens[self.a].start

    @property
    def end(self) -> int:
        return self.sent.tokens[self.b - 1].end


def _content(tok) -> bool:
    return tok.pos not in _EDGE_POS and tok.lemma not in STOPWORDS and any(ch.isalnum() for ch in tok.text)


def _lemma(tok) -> str:
    return normalize_text(tok.lemma).lower()


def _in_question(tok, qlemmas: frozenset[str]) -> bool:
    """The question already says this word, or the country behind a demonym ("Turkish" ~ "Turkey")."""
    lem = _lemma(tok)
    if lem in qlemmas:
        return True
    if (tok.pos in ("PROPN", "ADJ") or tok.ent in ("NORP", "GPE")) and len(lem) >= 5:
        return any(len(q) >= 5 and q[:4] == lem[:4] and q[0] == lem[0] for q in qlemmas)
    return False


def _trim(sent: Sentence, a: int, b: int, qlemmas: frozenset[str]) -> tuple[int, int]:
    """Drop edge tokens that are function words, punctuation, or words the question already has."""
    toks = sent.tokens
    changed = True
    while changed and a < b:
        changed = False
        for side in (0, 1):
            if a >= b:
                break
            t = toks[a] if side == 0 else toks[b - 1]
            drop = (t.pos in _EDGE_POS and not (t.pos == "DET" and side == 0 and b - a > 1 and False)) \
                or _in_question(t, qlemmas) or t.text in _QUOTES or t.text.lower() in ("'s", "\u2019s")
            if drop:
                if side == 0:
                    a += 1
                else:
                    b -= 1
                changed = True
    return a, b


def _token_span(sent: Sentence, start: int, end: int) -> tuple[int, int] | None:
    idx = [i for i, t in enumerate(sent.tokens) if t.start >= start and t.end <= end]
    return (idx[0], idx[-1] + 1) if idx else None


def _subtree(sent: Sentence, i: int) -> tuple[int, int]:
    children: dict[int, list[int]] = {}
    for j, t in enumerate(sent.tokens):
        if t.head != j:
            children.setdefault(t.head, []).append(j)
    lo = hi = i
    stack = [i]
    while stack:
        j = stack.pop()
        lo, hi = min(lo, j), max(hi, j)
        stack.extend(children.get(j, []))
    return lo, hi + 1


def candidate_spans(sent: Sentence, qlemmas: frozenset[str]) -> list[tuple[int, int, str]]:
    """Token spans (a, b, label) worth scoring in one sentence; label is an entity type or NP/NUM."""
    toks = sent.tokens
    raw: list[tuple[int, int, str]] = []
    for s, e, label in sent.ents:
        sp = _token_span(sent, s, e)
        if sp:
            raw.append((*sp, label))
    for s, e in sent.chunks:
        sp = _token_span(sent, s, e)
        if sp:
            raw.append((*sp, "NP"))
    for i, t in enumerate(toks):
        if t.dep in _NOMINAL_DEPS and t.pos in ("NOUN", "PROPN", "NUM"):
            a, b = _subtree(sent, i)
            if b - a <= MAX_CAND_TOKENS:
                raw.append((a, b, "NP"))
        if t.pos == "NUM" and i + 1 < len(toks) and toks[i + 1].pos == "NOUN":
            raw.append((i, i + 2, "NUM"))
    i = 0
    while i < len(toks):  # runs of proper nouns: "Dmitry Shugayev" out of a run-on ORG entity
        if toks[i].pos == "PROPN":
            j = i
            while j < len(toks) and toks[j].pos == "PROPN":
                j += 1
            raw.append((i, j, toks[i].ent or "PROPN"))
            i = j
        else:
            i += 1
    out, seen = [], set()
    for a, b, label in raw:
        a, b = _trim(sent, a, b, qlemmas)
        if a >= b or (a, b) in seen:
            continue
        span = toks[a:b]
        if not any(_content(t) for t in span):
            continue
        if all(_in_question(t, qlemmas) or not _content(t) for t in span):
            continue  # the question already says it
        s, e = toks[a].start, toks[b - 1].end
        if not _clean_edges(sent, s, e):
            continue
        if any(_cuts_amount(sent, s, e, a2, b2) for a2, b2, lab in sent.ents if lab in NUMERIC):
            continue  # never part of an amount, date or quantity ("billion" out of "$2.5 billion")
        seen.add((a, b))
        if label in ("NP", "PROPN", "NUM"):
            label = _label_of(sent, s, e) or label
        out.append((a, b, label))
    return out


def _clean_edges(sent: Sentence, s: int, e: int) -> bool:
    """Never a piece cut out of a word or a name: "400" out of "S-400"."""
    text, base = sent.text, sent.start
    before = text[s - base - 1] if s > base else " "
    after = text[e - base] if e - base < len(text) else " "
    if before.isalnum() or after.isalnum() or before in "$\u20ac\u00a3#" or after == "%":
        return False  # a piece of a word, a name or an amount ("2" out of "$2 billion")
    if before == "-" and s - base - 2 >= 0 and text[s - base - 2].isalnum():
        return False
    if after == "-" and e - base + 1 < len(text) and text[e - base + 1].isalnum():
        return False
    return True


def _cuts_amount(sent: Sentence, s: int, e: int, a: int, b: int) -> bool:
    """True when span s:e overlaps entity a:b and leaves digits or symbols of it outside."""
    if not (a < e and s < b) or (s <= a and b <= e):
        return False
    outside = sent.text[a - sent.start:max(a, s) - sent.start] + sent.text[min(b, e) - sent.start:b - sent.start]
    return bool(re.search(r"[\d$\u20ac\u00a3%]", outside))


def _label_of(sent: Sentence, s: int, e: int) -> str | None:
    """The entity type of a span: the type of an entity it equals or mostly covers."""
    best, cover = None, 0.0
    for a, b, label in sent.ents:
        inter = min(b, e) - max(a, s)
        if inter > 0:
            frac = inter / max(e - s, b - a)
            if frac > cover:
                best, cover = label, frac
    return best if cover >= 0.5 else None


def _norm(text: str) -> str:
    from ..eval.metrics import normalize_answer

    return normalize_answer(text)


class FeatureReader:
    """Scores typed candidate spans of the top passages with a logistic model over visible features."""

    name = "features"
    uses_vectors = True

    def __init__(self, index=None, embedder=None, *, weights: dict[str, float] | None = None,
                 max_passages: int = 10, top_n: int = 20) -> None:
        from .settings import load_reader_settings

        self.index = index
        self.embedder = embedder
        settings = load_reader_settings(self.name)
        self.weights = {**DEFAULT_WEIGHTS, **(weights or settings.get("weights") or {})}
        self.max_passages = max_passages
        self.top_n = top_n
        self._idf: dict[str, float] | None = None

    # -- corpus statistics ------------------------------------------------------------------------
    def idf(self, lemma: str) -> float:
        if self._idf is None:
            df: Counter[str] = Counter()
            n = 0
            if self.index is not None:
                for doc_id in self.index.documents:
                    for s in self.index.sentences(doc_id):
                        n += 1
                        df.update({_lemma(t) for t in s.tokens})
            self._idf_n = n
            self._idf = {k: math.log((n + 1) / (v + 0.5)) for k, v in df.items()}
        return self._idf.get(lemma, math.log((self._idf_n + 1) / 0.5))

    # -- sentences of a passage -------------------------------------------------------------------
    def passage_sentences(self, p: Passage) -> list[Sentence]:
        if self.index is not None and self.index.has_analysis and p.doc_id in self.index.documents:
            sents = [s for s in self.index.sentences(p.doc_id) if s.start >= p.start and s.end <= p.end]
            if sents:
                return sents
        # Not analysed at index time (or a piece of an over-long sentence): analyse now.
        spans = split_sentences(p.text)
        return analyze_spans([(p.text[a:b], p.start + a) for a, b in spans], p.doc_id)

    def sentence_vectors(self, sents: list[Sentence]) -> np.ndarray:
        rows = [s.row for s in sents]
        if self.index is not None and all(r >= 0 for r in rows) and rows:
            return np.asarray(self.index.sentence_vectors()[rows], dtype=np.float32)
        return self.embedder.encode([s.text for s in sents])

    # -- reading ----------------------------------------------------------------------------------
    def read(self, question: str, passages: Sequence[Passage], qvec: np.ndarray | None = None) -> ReaderOutput:
        info = analyze_question(question)
        passages = list(passages)[: self.max_passages]
        if not passages:
            return ReaderOutput([], 1.0)
        if qvec is None and self.embedder is not None:
            qvec = self.embedder.encode([question])[0]
        max_pscore = max(p.score for p in passages) or 1.0
        sent_list: list[tuple[Sentence, Passage, int]] = []
        seen_sent: set[tuple[str, int]] = set()
        for rank, p in enumerate(passages):
            for s in self.passage_sentences(p):
                if (s.doc_id, s.start) in seen_sent:
                    continue  # overlapping chunks repeat sentences: score each once, at its best rank
                seen_sent.add((s.doc_id, s.start))
                sent_list.append((s, p, rank))
        if not sent_list:
            return ReaderOutput([], 1.0)
        svecs = self.sentence_vectors([s for s, _, _ in sent_list])
        cos = (svecs @ qvec).tolist() if qvec is not None else [0.0] * len(sent_list)
        q_idf = sum(self.idf(l) for l in info.lemmas) or 1.0
        overlaps = []
        for s, _, _ in sent_list:
            lem = {_lemma(t) for t in s.tokens}
            overlaps.append(sum(self.idf(l) for l in info.lemmas & lem) / q_idf)
        combined = [o + c for o, c in zip(overlaps, cos)]
        order = sorted(range(len(sent_list)), key=lambda i: -combined[i])
        sent_rank = {i: r for r, i in enumerate(order)}

        cands: list[_Cand] = []
        for i, (s, p, prank) in enumerate(sent_list):
            if sent_rank[i] >= 8:
                continue  # only the best-matching sentences are read closely
            matched = [j for j, t in enumerate(s.tokens) if _lemma(t) in info.lemmas]
            verbs = [j for j, t in enumerate(s.tokens) if _lemma(t) in info.verbs or
                     (t.pos == "VERB" and _lemma(t) in info.lemmas)]
            for a, b, label in candidate_spans(s, info.lemmas):
                c = _Cand(s, a, b, label, p, prank)
                c.feats = self._features(c, info, overlaps[i], cos[i], sent_rank[i], matched, verbs,
                                         p.score / max_pscore if max_pscore > 0 else 0.0)
                cands.append(c)
        support = Counter(_norm(s.text[c.start - s.start:c.end - s.start]) for c in cands for s in [c.sent])
        out = []
        for c in cands:
            key = _norm(c.sent.text[c.start - c.sent.start:c.end - c.sent.start])
            c.feats["support"] = math.log1p(support[key] - 1) if key else 0.0
            z = sum(self.weights.get(k, 0.0) * v for k, v in c.feats.items())
            score = 1.0 / (1.0 + math.exp(-z))
            p = c.passage
            text = p.text[c.start - p.start:c.end - p.start]
            feats = dict(c.feats)
            feats["kind"] = _kind(c.label)
            out.append(SpanCandidate(p.doc_id, c.start, c.end, text, score, p, feats))
        out.sort(key=lambda x: -x.score)
        best: dict[tuple[str, int, int], SpanCandidate] = {}
        for c in out:
            best.setdefault((c.doc_id, c.start, c.end), c)
        ranked = list(best.values())[: self.top_n]
        return ReaderOutput(ranked, 1.0 - (ranked[0].score if ranked else 0.0))

    def _features(self, c: _Cand, info: QuestionInfo, overlap: float, cos: float, srank: int,
                  matched: list[int], verbs: list[int], pscore: float) -> dict[str, float]:
        toks = c.sent.tokens
        span = range(c.a, c.b)
        label = c.label
        is_entity = label not in ("NP", "PROPN", "NUM")
        type_match = 1.0 if label in info.expected else 0.0
        if not type_match and info.expected and label in ("PROPN",) and info.expected & {PERSON, ORG, GPE}:
            type_match = 0.5
        if not type_match and label == "NUM" and info.expected & {CARDINAL, QUANTITY}:
            type_match = 1.0
        type_clash = 1.0 if info.expected and is_entity and not type_match else 0.0
        if not info.expected and label in NUMERIC and info.wh in ("what", "which") and info.target is None:
            type_clash = 0.5  # a bare "what ..." question rarely wants a date or a number
        heads = [j for j in span if not (c.a <= toks[j].head < c.b) or toks[j].head == j]
        head_lemmas = {_lemma(toks[j]) for j in heads}
        target_head = 1.0 if info.target and (info.target in head_lemmas) else 0.0
        if matched:
            dist = min(min(abs(j - m) for m in matched) for j in (c.a, c.b - 1))
            proximity = 1.0 / (1.0 + max(0, dist - 1) / 3.0)
        else:
            proximity = 0.0
        link = 0.0
        anchors = set(matched) | set(verbs)
        for j in heads:
            k, hops = toks[j].head, 0
            while hops < 3:
                if k in anchors and not (c.a <= k < c.b):
                    link = max(link, 1.0 / (1 + hops))
                    break
                if toks[k].head == k:
                    break
                k, hops = toks[k].head, hops + 1
        role = 1.0 if any(toks[j].dep in _ROLE_DEPS for j in heads) else 0.0
        content = [j for j in span if _content(toks[j])]
        q_overlap = (sum(1 for j in content if _in_question(toks[j], info.lemmas)) / len(content)) if content else 1.0
        n = c.b - c.a
        return {
            "bias": 1.0, "type_match": type_match, "type_clash": type_clash, "target_head": target_head,
            "is_entity": 1.0 if is_entity else 0.0, "sent_overlap": overlap, "sent_cos": cos,
            "sent_rank": 1.0 / (1.0 + srank), "proximity": proximity, "syn_link": link, "syn_role": role,
            "q_overlap": q_overlap, "passage_rank": 1.0 / (1.0 + c.passage_rank), "passage_score": pscore,
            "length": math.log1p(n), "too_long": 1.0 if n > 8 else 0.0,
        }


_KINDS = {PERSON: 1.0, ORG: 2.0, NORP: 3.0, GPE: 4.0, LOC: 4.0, FAC: 4.0, DATE: 5.0, TIME: 5.0, CARDINAL: 6.0,
          QUANTITY: 7.0, MONEY: 8.0, PERCENT: 9.0}


def _kind(label: str) -> float:
    """A number per answer kind, so that only answers of one kind count as disagreeing sources."""
    return _KINDS.get(label, 0.0)
