"""Question sets for ``rag eval`` and for training: the gold JSONL (``GoldItem``) and SQuAD 2.0
files (the one reader and writer of SQuAD JSON in the package: ``read_squad_json``,
``squad_articles``, ``load_squad``, ``squad_subset``, ``write_squad_docs``; ``rag.train`` reads its
data through them too).
"""
from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError


DEFAULT_GOLD = Path("evals/gold.jsonl")


@dataclass(frozen=True)
class GoldItem:
    """One question with its gold answers (``()`` = unanswerable) and the articles that state them."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...]
    answerable: bool
    type: str = "other"
    split: str = ""
    unanswerable_kind: str | None = None
    paraphrase: bool = False


def load_gold(path: Path, split: str = "all") -> list[GoldItem]:
    """The gold questions of ``split`` ("dev", "test" or "all") from a gold JSONL file."""
    if not path.is_file():
        raise InputError(f"gold file {str(path)!r} does not exist: pass a gold JSONL file "
                         f"(default {DEFAULT_GOLD}) or --squad FILE.json")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            items.append(_gold_item(line, path, n))
    _check_unique(items, path)
    chosen = [it for it in items if split == "all" or it.split == split]
    if not chosen:
        raise InputError(f"{path} holds no questions of the {split!r} split ({len(items)} questions in all): "
                         "use --split dev, test or all")
    return chosen


def _gold_item(line: str, path: Path, n: int) -> GoldItem:
    try:
        r = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{path} line {n} is not valid JSON ({e.msg})") from None
    missing = [k for k in ("id", "question", "answers") if k not in r] if isinstance(r, dict) else ["all"]
    if missing:
        raise InputError(f"{path} line {n} is not a question object with id, question and answers "
                         f"(missing: {', '.join(missing)})")
    answers = tuple(str(a) for a in r["answers"])
    answerable = bool(r.get("answerable", bool(answers)))
    if answerable and not answers:
        raise InputError(f"{path} line {n} ({r['id']}) is marked answerable but has no answers")
    return GoldItem(id=str(r["id"]), question=str(r["question"]), answers=answers if answerable else (),
                    doc_ids=tuple(r.get("doc_ids", ())), answerable=answerable, type=str(r.get("type", "other")),
                    split=str(r.get("split", "")), unanswerable_kind=r.get("unanswerable_kind"),
                    paraphrase=bool(r.get("paraphrase", False)))


def _check_unique(items: Sequence[GoldItem], path: Path) -> None:
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise InputError(f"{path} holds the question id {it.id!r} twice: ids must be unique")
        seen.add(it.id)


def subsample(items: list[GoldItem], limit: int | None, seed: int = 13) -> list[GoldItem]:
    """A fixed random sample of ``limit`` questions (seeded, so reruns match), or all of them.

    Stratified: answerable and unanswerable questions keep their shares (SQuAD files list the
    unanswerable ones apart, so the first N ids would hold none). Returned in sorted id order.
    """
    if limit is None:
        return items
    if limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if limit >= len(items):
        return items
    import random

    rng = random.Random(seed)
    ordered = sorted(items, key=lambda it: it.id)
    has = [it for it in ordered if it.answerable]
    non = [it for it in ordered if not it.answerable]
    n_non = round(limit * len(non) / len(ordered))
    picked = rng.sample(has, min(len(has), limit - n_non)) + rng.sample(non, min(len(non), n_non))
    return sorted(picked, key=lambda it: it.id)


@dataclass(frozen=True)
class SquadParagraph:
    """One SQuAD paragraph written as an article: a synthetic title line, then the context verbatim."""

    doc_id: str  # "<title-slug>/<para-index>", the file path without .txt
    title: str
    index: int
    context: str

    @property
    def header(self) -> str:
        # The article cleaner takes the first line of >= 3 words as the title and keeps it out of the
        # body, so the context must not be the first line.
        return f"Paragraph {self.index} of {self.title}"

    @property
    def offset(self) -> int:
        """Where the context starts in the file text (after the header line and its newline)."""
        return len(self.header) + 1

    @property
    def source(self) -> str:
        return f"{self.header}\n{self.context}"


@dataclass
class SquadSet:
    paragraphs: list[SquadParagraph]
    items: list[GoldItem]
    spans: dict[str, list[tuple[int, int]]]  # question id -> answer spans as offsets into the file text
    warnings: list[str] = field(default_factory=list)


def slugify(title: str) -> str:
    slug = re.sub(r"[^0-9a-z]+", "-", title.lower()).strip("-")
    return slug[:60].strip("-") or "untitled"


def squad_title(raw: Any) -> str:
    """An article title as the paragraphs' header shows it: underscores as spaces, spaces collapsed."""
    return " ".join(str(raw).replace("_", " ").split())


def read_squad_json(path: Path) -> dict[str, Any]:
    """The parsed SQuAD JSON file (gzip'd or not), checked to have a ``data`` list of articles."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"SQuAD file {str(path)!r} does not exist")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as e:
        raise InputError(f"{path} is not a readable SQuAD JSON file ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{path} is not in SQuAD format: expected {{\"data\": [{{\"title\", \"paragraphs\"}}]}}")
    return data


def squad_articles(path: Path | str) -> list[dict[str, Any]]:
    """The articles (the ``data`` list) of a SQuAD JSON file, as stored: for training on raw windows."""
    return read_squad_json(Path(path))["data"]


def load_squad(path: Path, data: dict[str, Any] | None = None) -> SquadSet:
    """Paragraphs and questions of a SQuAD 2.0 (or 1.1) file; ``is_impossible`` questions have no answers.

    ``data``: the file's parsed JSON when the caller has read it already (``read_squad_json``).
    """
    path = Path(path)
    data = read_squad_json(path) if data is None else data
    out = SquadSet([], [], {})
    slugs: set[str] = set()
    for n, article in enumerate(data["data"]):
        title = squad_title(article.get("title") or f"article {n}")
        slug = slugify(title)
        while slug in slugs:
            slug += "-x"
        slugs.add(slug)
        for i, para in enumerate(article.get("paragraphs", [])):
            p = SquadParagraph(f"{slug}/{i}", title, i, str(para.get("context", "")))
            out.paragraphs.append(p)
            for qa in para.get("qas", []):
                _add_squad_question(out, p, qa)
    _check_unique(out.items, path)
    if not out.items:
        raise InputError(f"{path} holds no questions")
    return out


def _add_squad_question(out: SquadSet, p: SquadParagraph, qa: dict[str, Any]) -> None:
    answers = [a for a in qa.get("answers", []) if str(a.get("text", "")).strip()]
    impossible = bool(qa.get("is_impossible", not answers))
    spans = []
    for a in answers if not impossible else []:
        start = a.get("answer_start")
        text = str(a["text"])
        if isinstance(start, int) and p.context[start:start + len(text)] == text:
            spans.append((p.offset + start, p.offset + start + len(text)))
        else:
            out.warnings.append(f"{qa.get('id')}: answer_start {start} does not point at {text!r}")
    texts = tuple(dict.fromkeys(str(a["text"]) for a in answers)) if not impossible else ()
    out.items.append(GoldItem(id=str(qa["id"]), question=str(qa["question"]), answers=texts, doc_ids=(p.doc_id,),
                              answerable=not impossible, type=p.title, split="squad"))
    out.spans[str(qa["id"])] = spans


def squad_subset(squad: SquadSet, titles: Iterable[str]) -> SquadSet:
    """The paragraphs and questions of the articles named in ``titles`` (as in the file or as shown)."""
    keep = {squad_title(t) for t in titles}
    paragraphs = [p for p in squad.paragraphs if p.title in keep]
    docs = {p.doc_id for p in paragraphs}
    items = [it for it in squad.items if it.doc_ids[0] in docs]
    return SquadSet(paragraphs, items, {it.id: squad.spans[it.id] for it in items}, list(squad.warnings))


def write_squad_docs(paragraphs: Iterable[SquadParagraph], folder: Path) -> int:
    """Write each paragraph as ``<folder>/<title-slug>/<para-index>.txt``; returns the number written."""
    n = 0
    for p in paragraphs:
        path = folder / f"{p.doc_id}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(p.source.encode("utf-8"))  # bytes: no newline translation, offsets stay exact
        n += 1
    return n


def squad_answers_outside_body(squad: SquadSet) -> list[str]:
    """Ids of answerable questions whose every answer span the article cleaner left out of the body."""
    from ..documents import parse_article

    segments = {p.doc_id: parse_article(p.source, p.doc_id).segments for p in squad.paragraphs}
    lost = []
    for it in squad.items:
        spans = squad.spans.get(it.id, [])
        segs = segments[it.doc_ids[0]]
        if spans and not any(s <= a and b <= e for a, b in spans for s, e in segs):
            lost.append(it.id)
    return lost
