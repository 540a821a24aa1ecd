"""rag.train.paraphrases: rewritten SQuAD training questions, trained beside the originals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.encoders import file_sha256
from rag.errors import InputError
from rag.train import paraphrases as P
from test_negatives import train_with

DEAL = ("Turkey bought the S-400 from Russia in 2017. The United States has not imposed sanctions on Turkey "
        "out of fear of worsening relations with a major NATO ally.")
POOL = Path("/work/shared/data/squad-pool.json.gz")


def _ex(qid, question, answer=None):
    return {"id": qid, "title": "Deal", "question": question, "context": DEAL,
            "answers": [] if answer is None else [(answer, DEAL.index(answer))], "impossible": answer is None}


TRAIN = [_ex("d1", "In which year did Turkey buy the S-400 from Russia?", "2017"),
         _ex("d2", "What has the United States not imposed on Turkey?", "sanctions"),
         _ex("d3", "What did Russia pay Turkey?")]
DEV = [_ex("v1", "Who bought the S-400?", "Turkey")]


def _file(tmp_path, rows, name="p.jsonl"):
    f = tmp_path / name
    f.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return f


def test_each_rewrite_is_trained_with_its_originals_paragraph_and_answers(tmp_path):
    f = _file(tmp_path, [{"id": "d2", "question": " What penalty has Washington held back from Ankara? "},
                         {"id": "d1", "question": "When did Ankara acquire the Russian air defences?"}])
    out = P.paraphrase_examples(TRAIN, f, held_out=DEV)
    assert [e["id"] for e in out] == ["para:d2", "para:d1"]
    assert out[0]["question"] == "What penalty has Washington held back from Ankara?"  # stripped
    assert out[0]["answers"] == [("sanctions", DEAL.index("sanctions"))] and out[0]["context"] == DEAL
    assert out[1]["answers"] == [("2017", DEAL.index("2017"))] and not out[1]["impossible"]
    assert TRAIN[0]["question"].startswith("In which year")  # the originals are left as they were
    assert [e["id"] for e in P.paraphrase_examples(TRAIN, f, prefix="para2")] == ["para2:d2", "para2:d1"]


@pytest.mark.parametrize("rows, match", [
    ([{"id": "v1", "question": "Which buyer took the Russian system?"}], "held-out dev questions"),
    ([{"id": "zz9", "question": "Who?"}], "not questions of the training data"),
    ([{"id": "d3", "question": "What sum went from Moscow to Ankara?"}], "unanswerable"),
    ([{"id": "d1", "question": "When?"}, {"id": "d1", "question": "In what year?"}], "there twice"),
    (["{not json"], "not JSON"),
    ([{"id": "d1"}], "non-empty string"),
    ([{"id": "d1", "question": "  "}], "non-empty string"),
    ([], "holds no paraphrases"),
])
def test_bad_files_are_refused_with_what_to_do(tmp_path, rows, match):
    with pytest.raises(InputError, match=match):
        P.paraphrase_examples(TRAIN, _file(tmp_path, rows), held_out=DEV)


def test_a_missing_file_names_the_shipped_one(tmp_path):
    with pytest.raises(InputError, match="paraphrases.jsonl"):
        P.paraphrase_examples(TRAIN, tmp_path / "nope.jsonl")


@pytest.mark.parametrize("shipped_file", [P.PARAPHRASES_FILE, P.PARAPHRASES_FILE.with_name("paraphrases2.jsonl")])
def test_the_shipped_files_rewrite_training_questions_of_the_pool(shipped_file):
    if not POOL.exists():
        pytest.skip("../shared/data/squad-pool.json.gz not present")
    from rag.eval.datasets import squad_articles
    from rag.train.low_overlap import overlap, answer_sentence
    from rag.train.negatives import asks_figure
    from rag.train.neural import flatten, resolve_dev_titles

    arts = squad_articles(POOL)
    dev = set(resolve_dev_titles(arts))
    train = flatten(a for a in arts if a["title"] not in dev)
    out = P.paraphrase_examples(train, shipped_file, held_out=flatten(a for a in arts if a["title"] in dev))
    assert len(out) >= 2000
    by_id = {e["id"]: e for e in train}
    originals = [by_id[e["id"].removeprefix("para:")] for e in out]
    # reworded: no rewrite repeats its question, and as a whole they share far fewer of their
    # answer sentence's words than the questions they rewrite
    assert all(e["question"].lower() != o["question"].lower() for e, o in zip(out, originals))
    ov = sorted(overlap(e["question"], answer_sentence(e["context"], e["answers"][0][1])) for e in out)
    ov_orig = sorted(overlap(o["question"], answer_sentence(o["context"], o["answers"][0][1])) for o in originals)
    assert ov[len(ov) // 2] <= ov_orig[len(ov_orig) // 2] - 0.25
    assert not any(asks_figure(o["question"]) for o in originals)
    assert all(e["question"].endswith("?") or e["question"].startswith("Name ") for e in out)  # or SQuAD's "Name one ..."


def test_train_with_paraphrases_logs_them_and_resume_must_repeat_them(tiny_qa_model, tmp_path):
    other = "The Eiffel Tower is in Paris. It was finished in 1889."
    data = {"version": "v2.0", "data": [
        {"title": "Deal", "paragraphs": [{"context": DEAL, "qas": [
            {"id": "d1", "question": "In which year did Turkey buy the S-400 from Russia?", "is_impossible": False,
             "answers": [{"text": "2017", "answer_start": DEAL.index("2017")}]}]}]},
        {"title": "Tower", "paragraphs": [{"context": other, "qas": [
            {"id": "t1", "question": "When was the Eiffel Tower finished?", "is_impossible": False,
             "answers": [{"text": "1889", "answer_start": other.index("1889")}]}]}]},
    ]}
    f = _file(tmp_path, [{"id": "d1", "question": "When did Ankara acquire the Russian air defences?"}])
    start = train_with(tiny_qa_model, tmp_path, data, "Tower", {"paraphrases": f}, r", --paraphrases .*p\.jsonl \(sha256")
    assert start["paraphrases"] == [{"path": str(f), "sha256": file_sha256(f), "questions": 1}]
    assert start["train_questions"] == start["main_train_questions"] + 1
    # a second file of rewrites adds its own, under ids of their own; resuming with one file is refused
    f2 = _file(tmp_path, [{"id": "d1", "question": "In what year did Ankara take the Russian missiles?"}], "p2.jsonl")
    from rag.train import neural as T

    kw = dict(encoder=str(tiny_qa_model), max_length=48, stride=16, batch_size=2, checkpoint_every=1,
              dev_titles=["Tower"], progress=False, evaluate=False, device="cpu")
    assert T.train_reader(tmp_path / "data.json", tmp_path / "two", max_steps=1, paraphrases=[f, f2], **kw)["finished"]
    two = [json.loads(x) for x in (tmp_path / "two" / "train_log.jsonl").read_text().splitlines()
           if '"event": "start"' in x][-1]
    assert [p["questions"] for p in two["paraphrases"]] == [1, 1]
    assert two["train_questions"] == two["main_train_questions"] + 2
    with pytest.raises(InputError, match=r"p2\.jsonl"):
        T.train_reader(tmp_path / "data.json", tmp_path / "two", max_steps=2, resume=True, paraphrases=[f], **kw)
    # a dev question's rewrite is refused before anything is written
    g = _file(tmp_path, [{"id": "t1", "question": "In which year was the Paris landmark done?"}], "dev.jsonl")

    with pytest.raises(InputError, match="held-out dev"):
        T.train_reader(tmp_path / "data.json", tmp_path / "run2", encoder=str(tiny_qa_model), max_steps=1,
                       dev_titles=["Tower"], paraphrases=g, progress=False, evaluate=False, device="cpu")
    assert not (tmp_path / "run2").exists()


DELIVERY = ("Ankara took delivery of the Russian air defences at Murted air base near the capital, where the "
            "first batteries arrived by cargo plane.")


def test_paraphrase_negatives_pair_each_rewrite_with_its_own_near_miss():
    from rag.train.negatives import NearMisses, context_negatives

    train = [*TRAIN, {**_ex("d4", "Where did the batteries arrive?", None), "context": DELIVERY}]
    rewrite = {**TRAIN[0], "id": "para:d1", "question": "When did Ankara acquire the Russian air defences?"}
    got = context_negatives([rewrite], 1.0, seed=3, near=NearMisses(train), flag="--paraphrase-negatives")
    # ranked by the rewrite's words (Ankara, Russian, air, defences), from all the training paragraphs
    assert got == [{"id": "neg:para:d1", "title": "Deal", "question": rewrite["question"], "context": DELIVERY,
                    "answers": [], "impossible": True}]
    # without ``near`` only the rewrites' own paragraphs are candidates: none is free of the answer
    assert context_negatives([rewrite], 1.0, seed=3) == []
    with pytest.raises(InputError, match=r"--paraphrase-negatives must be above 0"):
        context_negatives([rewrite], 0.0, seed=3, flag="--paraphrase-negatives")


def test_train_with_paraphrase_negatives_logs_them_and_resume_must_repeat_them(tiny_qa_model, tmp_path):
    other = "The Eiffel Tower is in Paris. It was finished in 1889."
    data = {"version": "v2.0", "data": [
        {"title": "Deal", "paragraphs": [
            {"context": DEAL, "qas": [
                {"id": "d1", "question": "In which year did Turkey buy the S-400 from Russia?", "is_impossible": False,
                 "answers": [{"text": "2017", "answer_start": DEAL.index("2017")}]}]},
            {"context": DELIVERY, "qas": [
                {"id": "d4", "question": "Where did the batteries arrive?", "is_impossible": False,
                 "answers": [{"text": "Murted air base", "answer_start": DELIVERY.index("Murted air base")}]}]}]},
        {"title": "Tower", "paragraphs": [{"context": other, "qas": [
            {"id": "t1", "question": "When was the Eiffel Tower finished?", "is_impossible": False,
             "answers": [{"text": "1889", "answer_start": other.index("1889")}]}]}]},
    ]}
    f = _file(tmp_path, [{"id": "d1", "question": "When did Ankara acquire the Russian air defences?"}])
    flags = {"paraphrases": f, "paraphrase_negatives_fraction": 1.0}
    start = train_with(tiny_qa_model, tmp_path, data, "Tower", flags, r"and --paraphrase-negatives 1\b")
    assert start["paraphrase_negatives"] == 1 and start["paraphrase_negatives_fraction"] == 1.0
    assert start["train_questions"] == start["main_train_questions"] + 2  # the rewrite and its negative
    assert start["train_unanswerable"] == 1
    from rag.train import neural as T

    kw = dict(encoder=str(tiny_qa_model), max_length=48, stride=16, batch_size=2, dev_titles=["Tower"],
              progress=False, evaluate=False, device="cpu")
    # the same rewrites without their negatives do not resume the run
    with pytest.raises(InputError, match="no --paraphrase-negatives|--paraphrase-negatives 1"):
        T.train_reader(tmp_path / "data.json", tmp_path / "run", max_steps=3, resume=True, paraphrases=f, **kw)
    # negatives of rewrites with no rewrites: refused before anything is written
    with pytest.raises(InputError, match="needs --paraphrases FILE"):
        T.train_reader(tmp_path / "data.json", tmp_path / "run3", max_steps=1, paraphrase_negatives_fraction=0.5,
                       **kw)
    assert not (tmp_path / "run3").exists()


def test_rewrite_candidates_keep_literal_non_figure_answerable_training_questions():
    arts = [{"title": "Deal", "paragraphs": [{"context": DEAL, "qas": [
                {"id": "lit", "question": "In which year did Turkey buy the S-400 from Russia?",
                 "answers": [{"text": "2017", "answer_start": DEAL.index("2017")}]},
                {"id": "para", "question": "What is holding Washington back from penalising Ankara?",
                 "answers": [{"text": "fear", "answer_start": DEAL.index("fear")}]},
                {"id": "fig", "question": "How many S-400 did Turkey buy from Russia?",
                 "answers": [{"text": "2017", "answer_start": DEAL.index("2017")}]},
                {"id": "none", "question": "What did Russia pay Turkey?", "answers": [], "is_impossible": True},
                {"id": "lit2", "question": "What has the United States not imposed on Turkey?",
                 "answers": [{"text": "sanctions", "answer_start": DEAL.index("sanctions")}]}]}]},
            {"title": "Dev", "paragraphs": [{"context": DEAL, "qas": [
                {"id": "dev", "question": "Who bought the S-400 from Russia?",
                 "answers": [{"text": "Turkey", "answer_start": 0}]}]}]}]
    picked = P.rewrite_candidates(arts, ["Dev"], seed=1)
    assert [p["title"] for p in picked] == ["Deal"]
    assert [q["id"] for q in picked[0]["questions"]] == ["lit", "lit2"]
    assert picked[0]["questions"][0] == {"id": "lit", "question": arts[0]["paragraphs"][0]["qas"][0]["question"],
                                         "answer": "2017"}
    assert [q["id"] for q in P.rewrite_candidates(arts, ["Dev"], seed=1, per_paragraph=1)[0]["questions"]] == ["lit"]


SECOND_FILE = P.PARAPHRASES_FILE.with_name("paraphrases2.jsonl")


@pytest.mark.parametrize("shipped_file, args, dropped_answers", [
    # the first set: two rewrites dropped for holding their answer ("shorter or longer?")
    (P.PARAPHRASES_FILE, [], ["longer", "longer"]),
    # the second: other questions (seed 2027, the first set's skipped); one dropped, its SQuAD answer
    # ("Festival of Britain (1951)" for who organised an exhibition) not answering its question
    (SECOND_FILE, ["--seed", "2027", "--skip", str(P.PARAPHRASES_FILE)], ["Festival of Britain (1951)"]),
])
def test_each_shipped_file_rewrites_exactly_its_candidates_less_those_dropped(tmp_path, shipped_file, args,
                                                                               dropped_answers):
    if not POOL.exists():
        pytest.skip("../shared/data/squad-pool.json.gz not present")
    from rag.train.neural import DEV_TITLES_FILE

    assert P.main(["candidates", str(POOL), "--dev-titles", str(DEV_TITLES_FILE), "--out", str(tmp_path),
                   *args]) == 0
    asked = [q for n in range(8) for line in (tmp_path / f"in_{n}.jsonl").read_text().splitlines()
             for q in json.loads(line)["questions"]]
    shipped = [r["id"] for r in P.read_paraphrases(shipped_file)]
    assert len(asked) == 3203 and set(shipped) <= {q["id"] for q in asked}
    assert [q["answer"] for q in asked if q["id"] not in set(shipped)] == dropped_answers


def test_candidates_command_refuses_a_bad_dev_titles_file(tmp_path, capsys):
    (tmp_path / "pool.json").write_text(json.dumps({"version": "v2.0", "data": []}), encoding="utf-8")
    assert P.main(["candidates", str(tmp_path / "pool.json"), "--dev-titles", str(tmp_path / "nope.json"),
                   "--out", str(tmp_path / "out")]) == 2
    assert "rag/models/reader/dev_titles.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
