"""The answer logic every reader shares: merging, disagreement, abstention, evidence, plug-in readers."""
import json

import pytest

import rag
from rag.answer import Answerer, dates_agree, evidence_for, figure_kind, group_candidates, has_count, month_dates
from rag.readers.base import ReaderOutput, SpanCandidate
from rag.schema import Passage
from conftest import SEEDS, sources

P1 = Passage("a", "A", "The deal was worth about $2 billion. It was signed in 2017.", 100, 158, 1.0, "a:0")
P2 = Passage("b", "B", "Russia said the deal was worth $2.5 billion.", 0, 44, 0.9, "b:0")
P3 = Passage("c", "C", "Reports valued it at about $2 billion in total.", 0, 47, 0.8, "c:0")


def cand(p, text, score, kind=8.0):
    rel = p.text.index(text)
    return SpanCandidate(p.doc_id, p.start + rel, p.start + rel + len(text), text, score, p, {"kind": kind})


class StubReader:
    name = "stub"
    uses_vectors = False

    def __init__(self, cands):
        self.cands = cands

    def read(self, question, passages, qvec=None):
        return ReaderOutput(self.cands)


def decide(cands, threshold=0.3, question="q?"):
    a = Answerer(retriever=None, reader=StubReader(cands), threshold=threshold)
    return a.decide(question, [P1, P2, P3], ReaderOutput(cands), threshold)


def test_agreeing_sources_merge_with_higher_score():
    one = decide([cand(P1, "$2 billion", 0.6)])
    two = decide([cand(P1, "$2 billion", 0.6), cand(P3, "$2 billion", 0.6)])
    assert two.text == "$2 billion" and two.score > one.score
    assert [c.doc_id for c in two.citations] == ["a", "c"]


def test_disagreeing_sources_become_alternatives_with_citations():
    ans = decide([cand(P1, "$2 billion", 0.6), cand(P2, "$2.5 billion", 0.55), cand(P1, "2017", 0.5, kind=5.0)])
    assert ans.text == "$2 billion"
    assert [(x.text, x.doc_id) for x in ans.alternatives] == [("$2.5 billion", "b")]
    assert ans.alternatives[0].citations[0].doc_id == "b"
    assert ans.alternatives[0].evidence.text == "Russia said the deal was worth $2.5 billion."


def plain(p, text, score):
    """A candidate of a reader without answer kinds (a plain neural reader's features)."""
    rel = p.text.index(text)
    return SpanCandidate(p.doc_id, p.start + rel, p.start + rel + len(text), text, score, p, {"span_logit": 1.0})


def test_figure_kind():
    assert [figure_kind(t) for t in ("$2.5 billion", "about $2 billion", "2.5 billion rubles", "40%",
                                     "3 March", "in the 1990s", "May 2019", "two battalions 2", "100")] == \
        ["money", "money", "money", "percent", "date", "date", "date", "number", "number"]
    assert [figure_kind(t) for t in ("S-400", "Vladimir Putin", "billion", "dollars", "the coming months")] == \
        [None, None, None, None, None]


def test_a_reader_without_kinds_shows_another_articles_figure():
    # A plain neural reader gives no answer kinds, and its one softmax over all passages squashes a
    # less confident article's figure (0.05 here): the other article's best figure of the answer's
    # kind is shown down to a quarter of the threshold (at most 0.1), a span of another kind or a second figure of
    # the same article is not.
    ans = decide([plain(P1, "$2 billion", 0.8), plain(P2, "Russia", 0.1), plain(P2, "$2.5 billion", 0.09),
                  plain(P3, "Reports", 0.08), plain(P2, "deal", 0.07)], threshold=0.3)
    assert ans.text == "$2 billion"
    assert [(x.text, x.doc_id) for x in ans.alternatives] == [("$2.5 billion", "b")]
    assert decide([plain(P1, "$2 billion", 0.8), plain(P2, "$2.5 billion", 0.05)], threshold=0.3).alternatives == []
    named = decide([plain(P1, "The deal", 0.8), plain(P2, "Russia", 0.1)], threshold=0.3)
    assert named.alternatives == []  # no figure in the answer: only the score rule applies
    # a high threshold (chosen to refuse near misses) does not raise the figure's floor above 0.1
    high = decide([plain(P1, "$2 billion", 0.9), plain(P2, "$2.5 billion", 0.12)], threshold=0.64)
    assert [(x.text, x.doc_id) for x in high.alternatives] == [("$2.5 billion", "b")]
    assert decide([plain(P1, "$2 billion", 0.9), plain(P2, "$2.5 billion", 0.09)], threshold=0.64).alternatives == []


def test_a_fragment_of_the_answer_is_not_a_rival():
    # "billion" occurs in two articles, so it is not one article's candidate list; but it is a piece
    # of the answer "$2 billion", not a figure that disagrees with it (seen with the fused reader).
    frag = [cand(P1, "billion", 0.5), cand(P2, "billion", 0.3)]
    ans = decide([cand(P1, "$2 billion", 0.6), *frag, cand(P2, "$2.5 billion", 0.4)])
    assert [(x.text, x.doc_id) for x in ans.alternatives] == [("$2.5 billion", "b")]


def test_month_dates_and_agreement():
    assert month_dates("began on July 12, 2019.") == [(12, 7, 2019)]
    assert month_dates("12th of July 2019 and 3 March") == [(12, 7, 2019), (3, 3, None)]
    assert month_dates("in the 1990s, it may be") == []  # no month named ("may" is not May)
    assert dates_agree("July 12, 2019", "July 2019")
    assert dates_agree("July 2019", "July 12, 2019")
    assert dates_agree("July 12, 2019", "ordered in 2017 and received its first batch in July 2019")
    assert not dates_agree("July 12, 2019", "July 2018")
    assert not dates_agree("July 12, 2019", "July 13")
    assert not dates_agree("July 12, 2019", "October")
    assert not dates_agree("July 12, 2019", "end of 2019 or beginning of 2020")  # no month: not the same claim
    assert not dates_agree("2019", "July 2019")


def test_a_less_precise_date_is_not_a_disagreement():
    # Seen on the seed corpus: "July 12, 2019" (001) with "July 2019" (002) listed as a source that
    # disagrees; it says the same thing less precisely. A different month still disagrees.
    p1 = Passage("a", "A", "The deliveries began on July 12, 2019.", 0, 38, 1.0, "a:0")
    p2 = Passage("b", "B", "Turkey ordered in 2017 and received its first batch in July 2019.", 0, 65, 0.9, "b:0")
    p3 = Passage("c", "C", "Deliveries were due in October.", 0, 31, 0.8, "c:0")
    # "2017" (b) is that article's second figure: once its best one agrees, it is no rival either
    cands = [plain(p1, "July 12, 2019", 0.8), plain(p2, "July 2019", 0.7), plain(p3, "October", 0.6),
             plain(p2, "2017", 0.2)]
    a = Answerer(retriever=None, reader=StubReader(cands), threshold=0.3)
    ans = a.decide("When did the deliveries begin?", [p1, p2, p3], ReaderOutput(cands), 0.3)
    assert ans.text == "July 12, 2019"
    assert [(x.text, x.doc_id) for x in ans.alternatives] == [("October", "c")]


def test_same_article_two_values_is_not_a_disagreement():
    ans = decide([cand(P1, "$2 billion", 0.6), cand(P1, "2017", 0.55, kind=8.0)])
    assert ans.alternatives == []


def test_abstains_below_threshold_and_keeps_closest_passages():
    ans = decide([cand(P1, "$2 billion", 0.2)], threshold=0.3)
    assert ans.text is None and ans.doc_id is None
    assert [p.doc_id for p in ans.citations] == ["a", "b", "c"]
    assert 0.0 <= ans.score <= 1.0
    empty = decide([])
    assert empty.text is None


def test_how_many_is_answered_by_a_count_or_not_at_all():
    P4 = Passage("d", "D", "Turkey received the first batch of S-400 systems: two battalions.", 0, 66, 1.0, "d:0")
    q = "How many S-400 missiles did Turkey receive?"
    a = Answerer(retriever=None, reader=StubReader([]), threshold=0.3)
    ans = a.decide(q, [P4], ReaderOutput([cand(P4, "first batch", 0.9), cand(P4, "two battalions", 0.4)]), 0.3)
    assert ans.text == "two battalions"  # the more confident span states no number
    ans = a.decide(q, [P4], ReaderOutput([cand(P4, "first batch", 0.9), cand(P4, "S-400", 0.8)]), 0.3)
    assert ans.text is None and "how many" in ans.reason  # "400" of a name is not a count
    assert ans.score == pytest.approx(0.1) and ans.citations == [P4]
    # Other questions keep the best span, number or not.
    assert a.decide("What did Turkey receive?", [P4], ReaderOutput([cand(P4, "first batch", 0.9)]), 0.3).text
    a.count_rule = False  # switched off (scripts/ablate_rules.py measures it), the best span answers
    assert a.decide(q, [P4], ReaderOutput([cand(P4, "first batch", 0.9), cand(P4, "S-400", 0.8)]), 0.3).text == \
        "first batch"


@pytest.mark.parametrize("text, count", [("two battalions", True), ("100", True), ("$2.5 billion", True),
                                         ("20-25 July", True), ("4 S-400 units", True), ("dozens", True),
                                         ("S-400", False), ("MAKS-2021", False), ("first batch", False),
                                         ("F-35 jets", False)])
def test_has_count(text, count):
    assert has_count(text) is count


def test_evidence_is_the_sentence_holding_the_span():
    ev = evidence_for(P1, 100 + P1.text.index("2017"), 100 + P1.text.index("2017") + 4)
    assert ev.text == "It was signed in 2017." and P1.text[ev.start - 100:ev.end - 100] == ev.text


def test_grouping_uses_squad_normalisation():
    g = group_candidates([cand(P1, "$2 billion", 0.5), cand(P3, "$2 billion", 0.4)])
    assert len(g) == 1 and len(g[0].members) == 2


def test_offsets_contract_on_seeds(seed_qa):
    src = sources()
    for q in ["Who heads Russia's Federal Service for Military and Technical Cooperation?",
              "When did the deliveries of S-400 launchers to Turkey begin?",
              "What was the S-400 deal reportedly worth?",
              "How many CV90 vehicles did the army order?"]:
        a = seed_qa.ask(q, threshold=0.0)
        for span in [a] * (a.text is not None) + ([a.evidence] if a.evidence else []) + a.citations + a.alternatives:
            assert src[span.doc_id][span.start:span.end] == span.text


def test_chrome_only_question_abstains(seed_qa):
    for q in ["How many CV90 vehicles did the army order?", "What is Malaysia's defence budget for 2026?",
              "How many trucks did Sweden order from Volvo and Scania?"]:
        assert seed_qa.ask(q).text is None, q


def test_deal_value_shows_both_figures(seed_qa):
    # The two articles disagree: "about $2 billion" (000) and "$2.5 billion" (001). Both are shown,
    # each with its own source, with the defaults a user gets from `rag ask` (k=5: the 001 passage
    # reaches the reader because retrieval takes at most 2 chunks per article).
    a = seed_qa.ask("What was the S-400 deal reportedly worth?")
    shown = {(x.text, x.doc_id) for x in [a, *a.alternatives]}
    assert ("$2 billion", "000_58e3d6b70d3dc322") in shown or ("about $2 billion", "000_58e3d6b70d3dc322") in shown, shown
    assert ("$2.5 billion", "001_1040b1609e3dded8") in shown, shown


def test_plugin_reader_from_a_folder_end_to_end(seed_index, embedder, tiny_qa_model):
    qa = rag.load(seed_index, embedder=embedder, reader=str(tiny_qa_model))
    src = sources()
    a = qa.ask("Who heads Russia's Federal Service for Military and Technical Cooperation?", threshold=0.0)
    assert a.reader == "custom"  # a folder of one's own: no shipped settings apply
    assert a.text is not None and src[a.doc_id][a.start:a.end] == a.text
    assert src[a.evidence.doc_id][a.evidence.start:a.evidence.end] == a.evidence.text


def test_cli_ask_with_reader_path(seed_index, tiny_qa_model, capsys):
    from rag.cli import main

    assert main(["ask", "Who is Turkey's foreign minister?", "--index", str(seed_index),
                 "--reader", str(tiny_qa_model), "--threshold", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reader"] == "custom" and out["text"]


def test_unknown_reader_refused(seed_index, embedder):
    qa = rag.load(seed_index, embedder=embedder, reader="no-such-reader")
    with pytest.raises(rag.InputError, match="unknown reader|neither a reader name"):
        qa.ask("Who?")


def test_calibration_is_fitted_on_the_raw_score(seed_index, embedder):
    """calibrate_on_dev replaces the loaded calibration, it never stacks on it: a qa loaded with
    some other calibrator gives the same fit as one with none (the shipped settings depend on it)."""
    from rag.answer import Calibrator
    from rag.train.tuning import calibrate_on_dev

    gold = [json.loads(line) for line in open(SEEDS.parent / "evals" / "gold.jsonl", encoding="utf-8")]
    dev = [g for g in gold if g["split"] == "dev"][:30]
    qa = rag.load(seed_index, embedder=embedder, reader="features")
    qa.answerer.calibrator = Calibrator(3.0, 1.5, identity=False)
    cal_a, th_a, _ = calibrate_on_dev(qa, dev)
    qa.answerer.calibrator = Calibrator()
    cal_b, th_b, _ = calibrate_on_dev(qa, dev)
    assert cal_a.to_dict() == pytest.approx(cal_b.to_dict()) and th_a == pytest.approx(th_b)
    # and the fitted map is what the answerer then applies to the raw score
    qa.answerer.calibrator = cal_b
    q = "Who is Turkey's foreign minister?"
    raw = Answerer(qa.retriever, qa.answerer.reader).answer_many([q], k=qa.read_k, mode=qa.mode, threshold=0.0)[0]
    assert raw.text is not None
    assert qa.ask_many([q], threshold=0.0)[0].score == pytest.approx(cal_b(raw.score))


def test_the_reader_reads_its_tuned_k_unless_told_otherwise(seed_index, embedder):
    """With no k, ask reads as many passages as the reader's settings say (``Answerer.k``); a k
    given to ``load`` or to ``ask`` wins; a reader without a tuned k reads ``DEFAULT_K``."""
    from rag.pipeline import DEFAULT_K

    qa = rag.load(seed_index, embedder=embedder, reader="features")
    read = []
    inner = qa.answerer.reader.read
    qa.answerer.reader.read = lambda q, passages, qvec=None: (read.append(len(passages)), inner(q, passages, qvec))[1]
    q = "Who is Turkey's foreign minister?"
    qa.answerer.k = None
    assert qa.read_k == DEFAULT_K
    qa.ask(q)
    qa.answerer.k = 7
    assert qa.read_k == 7
    qa.ask(q)
    qa.ask(q, k=2)
    assert read == [DEFAULT_K, 7, 2]
    qa.k = 3  # as rag.load(..., k=3) sets it
    assert qa.read_k == 3
    with pytest.raises(rag.InputError, match="k must be a whole number of at least 1, got 0"):
        qa.ask(q, k=0)
    assert rag.load(seed_index, embedder=embedder, reader="features", k=4).read_k == 4


def test_shipped_readers_record_the_k_their_threshold_was_chosen_at():
    """A settings file with a k sweep keeps the k ``choose_k`` picks from it (within its latency
    budget, ``max_read_chars``, when it has one), with that k's threshold."""
    from rag.readers.settings import load_reader_settings

    for name in ("mpnet", "fused"):
        s = load_reader_settings(name)
        if "k_sweep" not in s:
            continue
        budget = s.get("max_read_chars", float("inf"))
        rows = [row for row in s["k_sweep"] if row.get("read_chars", 0) <= budget]
        top = max(row["dev_f1"] for row in rows)
        tie = 1.0 / s.get("sweep_calibrated_on", s["calibrated_on"])["questions"]
        # the setting that reads least (its k, where the sweep has no context) among dev ties
        chosen = min((row for row in rows if row["dev_f1"] >= top - tie - 1e-12),
                     key=lambda row: (row.get("read_chars", row["k"]), row["k"]))
        assert (s["k"], s.get("context", 0)) == (chosen["k"], chosen.get("context", 0))
        # how the windows are laid out, with a context (a file from before layouts: merged)
        assert s.get("windows", "merged") == chosen.get("windows", "merged")
        assert round(chosen["threshold"], 4) == round(s["threshold"], 4)


def test_choose_k_takes_the_smallest_k_within_one_question_of_the_best():
    from rag.train.tuning import choose_k

    def row(k, f1, constrained=True):
        return (k, f"cal{k}", 0.1 * k, {"constrained": {"f1": f1}, "best_f1": 0.99} if constrained else {"best_f1": f1})

    assert choose_k([row(5, 0.70), row(8, 0.72), row(10, 0.72), row(12, 0.71)], 1000)[0] == 8
    assert choose_k([row(5, 0.70), row(8, 0.72), row(10, 0.72), row(12, 0.71)], 50)[0] == 5  # 0.02 = 1/50: a tie
    assert choose_k([row(5, 0.70), row(8, 0.72)], 51)[0] == 8  # 0.02 > 1/51
    assert choose_k([row(12, 0.60), row(5, 0.60)], 100)[:3] == (5, "cal5", 0.5)
    assert choose_k([row(5, 0.70, False), row(10, 0.75, False)], 100)[0] == 10  # no floor: the plain best F1
    # with costs (characters read): the cheapest tie, whatever its k
    sweep = [row(5, 0.70), row(8, 0.72), row(5, 0.73), row(8, 0.73)]
    costs = [3000, 4800, 4400, 6100]
    assert sweep.index(choose_k(sweep, 100, costs=costs)) == 2  # 0.72 is 0.01 below: no tie at 1/100
    assert sweep.index(choose_k(sweep, 50, costs=costs)) == 2  # 0.72 ties at 1/50, and reads more
    assert sweep.index(choose_k(sweep, 30, costs=costs)) == 0  # 0.70 ties at 1/30: the cheapest
    assert sweep.index(choose_k(sweep, 100, costs=[3000, 4800, 6100, 4400])) == 3


def test_threshold_with_a_noans_floor_abstains_on_dev(seed_index, embedder):
    """With ``min_noans`` the chosen threshold, applied by the answerer as shipped, abstains on at
    least that share of dev's unanswerable questions, and its recorded dev figures are what a
    rerun at that threshold gives."""
    from rag.eval.metrics import squad_v2_scores
    from rag.train.tuning import calibrate_on_dev, threshold_fields

    gold = [json.loads(line) for line in open(SEEDS.parent / "evals" / "gold.jsonl", encoding="utf-8")]
    dev = [g for g in gold if g["split"] == "dev"]
    qa = rag.load(seed_index, embedder=embedder, reader="features")
    cal, th, best = calibrate_on_dev(qa, dev, min_noans=0.9)
    fields = threshold_fields(best)
    assert fields["threshold_rule"] == "best dev F1 with dev NoAns >= 0.9"
    assert fields["dev_noans_at_threshold"] >= 0.9
    assert fields["dev_f1_at_threshold"] <= fields["dev_best_f1"] + 1e-9
    qa.answerer.calibrator = cal
    answers = qa.ask_many([g["question"] for g in dev], threshold=th)
    unanswerable = [a for a, g in zip(answers, dev) if not g["answerable"]]
    assert sum(a.text is None for a in unanswerable) / len(unanswerable) >= 0.9
    got = squad_v2_scores({g["id"]: a.text for a, g in zip(answers, dev)},
                          {g["id"]: g["answers"] if g["answerable"] else [] for g in dev})
    assert got["f1"] == pytest.approx(fields["dev_f1_at_threshold"], abs=1e-9)


def test_unknown_names_by_hand():
    from rag.answer import unknown_names

    from rag.lexical import LexicalIndex

    vocab = LexicalIndex.build(["Turkey and Russia: the S-400 deal.", "Ankara, Turkish and Russian officials."])
    assert unknown_names("Which country placed an order for Oshkosh JLTVs?", vocab) == ["Oshkosh", "JLTVs"]
    # the first word is capitalised anyway; possessives, plurals and hyphenated parts are known
    assert unknown_names("Turkey's S-400s came from which Russian plant?", vocab) == []
    assert unknown_names("When was the Turkish-Russian deal signed in Ankara?", vocab) == []
    assert unknown_names("What did the Kremlin say?", vocab) == []  # known as Russia (rag.aliases)
    assert unknown_names("What did the Pentagon say?", vocab) == ["Pentagon"]  # US: not in these texts
    assert unknown_names("what did they say?", vocab) == []


def test_question_naming_something_absent_abstains_with_the_reason(seed_qa, seed_index, capsys):
    from rag.answer import NAME_GATE_CONFIDENCE
    from rag.cli import main

    a = seed_qa.ask("Which country placed an order for Oshkosh JLTVs?")  # only in the stripped chrome
    assert a.text is None and a.reason == "no article mentions 'Oshkosh', 'JLTVs'"
    assert a.score == NAME_GATE_CONFIDENCE and a.citations  # the closest passages are still shown
    assert rag.Answer.from_dict(a.to_dict()).reason == a.reason
    # a named entity the articles do mention goes to the reader as before
    assert seed_qa.ask("Who is Turkey's foreign minister?", threshold=0.0).text is not None
    assert main(["ask", "--index", str(seed_index), "--reader", "features", "Where is DroneShield planning to expand?"]) == 0
    assert "Not in these articles: no article mentions 'DroneShield'" in capsys.readouterr().out
