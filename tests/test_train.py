"""Smoke tests of rag.train.neural on a tiny random BERT (no download, a few seconds)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rag.eval.datasets import squad_articles  # noqa: E402
from rag.eval.metrics import f1_score  # noqa: E402
from rag.train import neural as T  # noqa: E402
from rag.train.negatives import NearMisses  # noqa: E402

POOL = Path("/work/shared/data/squad-pool.json.gz")

CTX1 = ("The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It was designed by the "
        "engineering company of Gustave Eiffel and is 330 metres tall.")
CTX2 = ("Marie Curie was born in Warsaw in 1867. She won the Nobel Prize in Physics in 1903 and the "
        "Nobel Prize in Chemistry in 1911, and she founded the Curie Institute in Paris.")
CTX3 = "The Danube flows through ten countries and empties into the Black Sea in Romania."


def _qa(qid, q, ctx, ans=None):
    if ans is None:
        return {"id": qid, "question": q, "answers": [], "is_impossible": True}
    return {"id": qid, "question": q, "answers": [{"text": ans, "answer_start": ctx.index(ans)}],
            "is_impossible": False}


def squad_fixture() -> dict:
    return {"version": "v2.0", "data": [
        {"title": "Eiffel_Tower", "paragraphs": [{"context": CTX1, "qas": [
            _qa("e1", "When was the Eiffel Tower completed?", CTX1, "1889"),
            _qa("e2", "Who designed the Eiffel Tower?", CTX1, "the engineering company of Gustave Eiffel"),
            _qa("e3", "How tall is the Eiffel Tower?", CTX1, "330 metres"),
            _qa("e4", "Who painted the Eiffel Tower in 1950?", CTX1),
        ]}]},
        {"title": "Marie_Curie", "paragraphs": [
            {"context": CTX2, "qas": [
                _qa("c1", "Where was Marie Curie born?", CTX2, "Warsaw"),
                _qa("c2", "When did Curie win the Nobel Prize in Chemistry?", CTX2, "1911"),
                _qa("c3", "What did Curie found?", CTX2, "the Curie Institute"),
                _qa("c4", "When did Curie win the Nobel Peace Prize?", CTX2),
            ]},
            {"context": CTX3, "qas": [
                _qa("d1", "Where does the Danube empty?", CTX3, "into the Black Sea"),
                _qa("d2", "How long is the Danube?", CTX3),
            ]},
        ]},
    ]}


@pytest.fixture()
def data_file(tmp_path) -> Path:
    p = tmp_path / "tiny-squad.json"
    p.write_text(json.dumps(squad_fixture()), encoding="utf-8")
    return p


def test_featurize_labels_point_at_the_answer(tiny_qa_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_qa_model))
    exs = T.flatten(squad_fixture()["data"])
    feats = T.featurize(exs, tok, max_length=24, stride=8)
    assert len(feats) > len(exs)  # short windows: contexts are split
    found = set()
    for f in feats:
        ex = exs[f["example"]]
        sp, ep = f["start_positions"], f["end_positions"]
        if ex["impossible"]:
            assert (sp, ep) == (0, 0)
            continue
        if (sp, ep) == (0, 0):
            continue  # the answer is not in this window
        assert f["ctx_start"] <= sp <= ep <= f["ctx_end"]
        text = ex["context"][f["offsets"][sp][0]: f["offsets"][ep][1]]
        assert text == ex["answers"][0][0]
        found.add(ex["id"])
    assert found == {e["id"] for e in exs if not e["impossible"]}  # every answer labelled somewhere


def test_split_is_deterministic_and_by_article():
    arts = squad_fixture()["data"] + [
        {"title": f"Article_{k}", "paragraphs": [{"context": CTX3, "qas": [
            _qa(f"x{k}", "Where does the Danube empty?", CTX3, "into the Black Sea")]}]} for k in range(8)]
    a = T.split_titles(arts, n_dev=4, seed=13)
    b = T.split_titles(list(reversed(arts)), n_dev=4, seed=13)
    assert a == b and len(a) == 4 and len(set(a)) == 4
    assert T.split_titles(arts, n_dev=4, seed=14) != a or True  # other seeds may differ
    # stratified: dev holds articles with unanswerable questions
    with_na = {"Eiffel_Tower", "Marie_Curie"}
    assert with_na & set(a)


def test_committed_dev_titles_are_reused():
    if not POOL.exists() or not T.DEV_TITLES_FILE.exists():
        pytest.skip("pool data or committed dev titles not present")
    arts = squad_articles(POOL)
    committed = json.loads(T.DEV_TITLES_FILE.read_text())["dev_titles"]
    assert T.resolve_dev_titles(arts) == sorted(committed)
    assert T.split_titles(arts, n_dev=10, seed=13) == sorted(committed)


def test_train_checkpoint_resume_export(tiny_qa_model, data_file, tmp_path):
    out = tmp_path / "run"
    kw = dict(encoder=str(tiny_qa_model), max_length=48, stride=16, batch_size=2, lr=1e-3,
              n_dev=1, checkpoint_every=1, progress=False, device="cpu")
    m1 = T.train_reader(data_file, out, max_steps=1, evaluate=False, **kw)
    assert m1["step"] == 1 and m1["finished"]
    ckpt = out / "checkpoint"
    assert (ckpt / "model.safetensors").exists() and (ckpt / T.STATE_FILE).exists()
    st = torch.load(ckpt / T.STATE_FILE, map_location="cpu", weights_only=False)
    assert st["step"] == 1 and "optimizer" in st and "scheduler" in st and "rng" in st
    dev = json.loads((out / "dev_titles.json").read_text())["dev_titles"]
    assert len(dev) == 1

    m2 = T.train_reader(data_file, out, max_steps=2, resume=True, evaluate=True, **kw)
    assert m2["step"] == 2 and m2["windows_seen"] == 4
    st = torch.load(ckpt / T.STATE_FILE, map_location="cpu", weights_only=False)
    assert st["step"] == 2
    assert json.loads((out / "dev_titles.json").read_text())["dev_titles"] == dev  # same split
    assert "dev" in m2 and 0.0 <= m2["dev"]["best_f1"] <= 100.0

    exp = T.export_fp16(out / "final", tmp_path / "exported")
    for name in ("model.safetensors", "config.json", "vocab.txt", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json"):
        assert (exp / name).exists(), name
    from safetensors import safe_open

    with safe_open(str(exp / "model.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(str(exp)).float()
    ref = AutoModelForQuestionAnswering.from_pretrained(str(out / "final")).float()
    w, r = model.qa_outputs.weight, ref.qa_outputs.weight
    assert torch.allclose(w, r, atol=1e-2) and not torch.equal(
        r, AutoModelForQuestionAnswering.from_pretrained(str(tiny_qa_model)).qa_outputs.weight)


def test_squad_v2_metrics_threshold():
    exs = [{"id": "a", "answers": [("Paris", 0)], "impossible": False},
           {"id": "b", "answers": [("Rome", 0)], "impossible": False},
           {"id": "c", "answers": [], "impossible": True}]
    preds = {"a": "Paris", "b": "the Rome", "c": "London"}
    # at threshold 0: a answered (-3), b abstains (+1), c answered (-1) -> wrong
    m = T.squad_v2_metrics(exs, preds, {"a": -3.0, "b": 1.0, "c": -1.0})
    assert m["HasAns_exact"] == 50.0 and m["NoAns_acc"] == 0.0 and round(m["exact"], 4) == round(100 / 3, 4)
    assert m["HasAns_exact_span"] == 100.0
    # best: answer a and b, abstain on c -> needs answering at na 1.0 but then c (-1.0) is answered
    # too: 2/3; answering only a: 2/3 as well (first reached) -> best 66.7 at threshold -3
    assert round(m["best_exact"], 4) == round(200 / 3, 4) and m["best_exact_thresh"] == -3.0
    m = T.squad_v2_metrics(exs, preds, {"a": -3.0, "b": -2.0, "c": 4.0})
    assert m["best_exact"] == 100.0 and m["best_f1_NoAns_acc"] == 100.0 and m["best_f1_HasAns_f1"] == 100.0
    assert f1_score("the Eiffel Tower", "Eiffel tower!") == 1.0


def test_min_noans_option_is_checked_before_any_reader_runs(capsys):
    """--min-noans takes a fraction: 85 (a percentage) is refused by the parser, naming the fix,
    before the commands build an index or load a reader."""
    from rag.train import features, fusion, tuning

    for main, args in ((tuning.main, ["fast", "--out", "x.json"]), (fusion.main, ["--squad", "x.json.gz"]),
                       (features.main, ["--squad", "x.json.gz"])):
        with pytest.raises(SystemExit) as e:
            main([*args, "--min-noans", "85"])
        assert e.value.code == 2
        assert "expected a fraction between 0 and 1 (e.g. 0.85), got '85'" in capsys.readouterr().err
    for bad in ("0", "5,x", ""):
        with pytest.raises(SystemExit) as e:
            tuning.main(["fast", "--out", "x.json", "--k", bad])
        assert e.value.code == 2
        assert f"expected whole numbers of at least 1, comma-separated (e.g. 5,8,10), got '{bad}'" in capsys.readouterr().err
    for bad in ("-1", "0,x"):
        with pytest.raises(SystemExit) as e:
            tuning.main(["fast", "--out", "x.json", "--context", bad])
        assert e.value.code == 2
        assert (f"expected whole numbers of characters, 0 or more, comma-separated (e.g. 0,150,300), got '{bad}'"
                in capsys.readouterr().err)
    for bad in ("joined", "merged,each", ","):
        with pytest.raises(SystemExit) as e:
            tuning.main(["fast", "--out", "x.json", "--windows", bad])
        assert e.value.code == 2
        assert (f"expected merged and/or separate, comma-separated (e.g. merged,separate), got '{bad}'"
                in capsys.readouterr().err)
    assert tuning._window_modes("separate, merged,separate") == ["separate", "merged"]


CTX4 = "lol my cat knocked the router off the shelf again so the wifi died at 2am"


def _extra_file(tmp_path, name="reddit-like.json", n=6) -> Path:
    """An answerable-only file in the shape of squadshifts-reddit: one 'article' of posts."""
    qas = [_qa(f"r{k}", f"What did the cat knock off, case {k}?", CTX4, "the router") for k in range(n)]
    p = tmp_path / name
    p.write_text(json.dumps({"version": "v2.0", "data": [
        {"title": "reddit", "paragraphs": [{"context": CTX4, "qas": qas}]}]}), encoding="utf-8")
    return p


def test_parse_mix():
    assert T.parse_mix("../shared/data/squadshifts-reddit.json.gz") == ("../shared/data/squadshifts-reddit.json.gz",
                                                                       None)
    assert T.parse_mix("../shared/data/squadshifts-amazon.json.gz:0.25") == (
        "../shared/data/squadshifts-amazon.json.gz", 0.25)
    from rag.errors import InputError

    with pytest.raises(InputError, match="not a fraction"):
        T.parse_mix("reddit.json.gz:a-quarter")
    with pytest.raises(InputError, match="above 0"):
        T.parse_mix("reddit.json.gz:0")


def test_mix_adds_drawn_questions_and_refuses_leaks(tmp_path):
    from rag.errors import InputError

    exs = T.flatten(squad_fixture()["data"])
    dev = [e for e in exs if e["title"] == "Marie_Curie"]
    extra = _extra_file(tmp_path)
    got, rec = T.mix_examples([(str(extra), 0.5)], n_train=4, seed=13, held_out=dev)
    assert len(got) == 2 and rec == [{"path": str(extra), "fraction": 0.5, "available": 6, "taken": 2,
                                      "unanswerable": 0}]
    assert all(e["id"].startswith("mix0:") and e["answers"] == [("the router", CTX4.index("the router"))]
               for e in got)
    again, _ = T.mix_examples([(str(extra), 0.5)], n_train=4, seed=13, held_out=dev)
    other, _ = T.mix_examples([(str(extra), 0.5)], n_train=4, seed=14, held_out=dev)
    assert [e["id"] for e in again] == [e["id"] for e in got]  # the seed fixes the draw
    assert {e["id"] for e in other} <= {f"mix0:r{k}" for k in range(6)}
    everything, rec = T.mix_examples([(str(extra), None)], n_train=4, seed=13, held_out=dev)
    assert len(everything) == 6 and rec[0]["taken"] == 6

    leaky = tmp_path / "leaky.json"
    leaky.write_text(json.dumps(squad_fixture()), encoding="utf-8")  # holds the dev article's paragraphs
    with pytest.raises(InputError, match="shares paragraphs with the held-out dev"):
        T.mix_examples([(str(leaky), None)], n_train=4, seed=13, held_out=dev)
    test_only = _extra_file(tmp_path, "squadshifts-new-wiki.json.gz".replace(".gz", ""))
    with pytest.raises(InputError, match="test-only"):
        T.mix_examples([(str(test_only), None)], n_train=4, seed=13, held_out=dev)
    with pytest.raises(InputError, match="does not exist"):
        T.mix_examples([(str(tmp_path / "missing.json.gz"), 0.1)], n_train=4, seed=13, held_out=dev)


def test_train_with_mix_logs_it_and_resume_keeps_it(tiny_qa_model, data_file, tmp_path):
    from rag.errors import InputError

    extra = _extra_file(tmp_path)
    out = tmp_path / "run"
    kw = dict(encoder=str(tiny_qa_model), max_length=48, stride=16, batch_size=2, lr=1e-3, n_dev=1,
              checkpoint_every=1, progress=False, device="cpu", evaluate=False)
    m = T.train_reader(data_file, out, max_steps=1, mix=[(str(extra), 0.5)], **kw)
    assert m["finished"]
    start = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()
             if '"event": "start"' in x][-1]
    n_main = start["main_train_questions"]
    taken = max(1, round(0.5 * n_main))
    assert start["mix"][0]["taken"] == taken and start["train_questions"] == n_main + taken
    with pytest.raises(InputError, match="resume with the same data"):
        T.train_reader(data_file, out, max_steps=2, resume=True, **kw)  # the mix left out
    m2 = T.train_reader(data_file, out, max_steps=2, resume=True, mix=[(str(extra), 0.5)], **kw)
    assert m2["step"] == 2
    refused = tmp_path / "refused"
    with pytest.raises(InputError, match="shares paragraphs"):
        T.train_reader(data_file, refused, max_steps=1, mix=[(str(data_file), None)], **kw)
    assert not refused.exists()  # a refused run writes nothing


def test_train_with_context_negatives_logs_them_and_resume_must_repeat_them(tiny_qa_model, data_file, tmp_path):
    from rag.errors import InputError

    out = tmp_path / "run"
    kw = dict(encoder=str(tiny_qa_model), max_length=48, stride=16, batch_size=2, lr=1e-3, n_dev=1,
              checkpoint_every=1, progress=False, device="cpu", evaluate=False, dev_titles=["Eiffel_Tower"])
    m = T.train_reader(data_file, out, max_steps=1, context_negatives_fraction=1.0, **kw)
    assert m["finished"]
    start = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()
             if '"event": "start"' in x][-1]
    assert start["context_negatives"] == 4 and start["train_questions"] == start["main_train_questions"] + 4
    assert start["train_unanswerable"] == 2 + 4
    with pytest.raises(InputError, match="--context-negatives 1"):
        T.train_reader(data_file, out, max_steps=2, resume=True, **kw)
    assert T.train_reader(data_file, out, max_steps=2, resume=True, context_negatives_fraction=1.0, **kw)["step"] == 2


def test_grouped_predict_reads_passages_jointly_and_evaluate_adds_near_misses(tiny_qa_model, data_file):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_qa_model))
    model = AutoModelForQuestionAnswering.from_pretrained(str(tiny_qa_model)).eval()
    exs = T.flatten(squad_fixture()["data"])
    c1 = next(e for e in exs if e["id"] == "c1")
    read = [c1, {**c1, "context": CTX3}]
    kw = dict(max_length=48, stride=16, progress=False)
    alone_p, alone_d = T.predict(model, tok, read, **kw)  # each its own question: ids collide, so c1 twice
    best, null = T._predict_raw(model, tok, read, batch_size=64, max_answer_tokens=30, device="cpu", **kw)
    joint_p, joint_d = T.predict(model, tok, read, groups=[0, 0], **kw)
    assert list(joint_p) == ["c1"]
    k = max(best, key=lambda i: best[i][0])  # the better passage's span wins, the smaller null counts
    assert joint_p["c1"] == best[k][1]
    assert joint_d["c1"] == pytest.approx(min(null.values()) - best[k][0])
    assert T.predict(model, tok, [c1], **kw) == T.predict(model, tok, [c1], groups=[7], **kw)

    near = NearMisses(exs)
    assert near.rank(c1, 5) == [CTX3]  # the article's other paragraph, not the question's own
    assert near.rank({**c1, "answers": [("Danube", 0)]}, 5) == []  # a paragraph holding an answer is no miss
    plain = T.evaluate_model(tiny_qa_model, data_file, titles=["Marie_Curie"], progress=False, max_length=48,
                             stride=16)
    mixed = T.evaluate_model(tiny_qa_model, data_file, titles=["Marie_Curie"], progress=False, max_length=48,
                             stride=16, distractors=2)
    assert plain["distractors"] == 0 and mixed["distractors"] == 2
    assert plain["total"] == mixed["total"] == 6  # still one prediction per question
    from rag.errors import InputError

    with pytest.raises(InputError, match="0 or more"):
        T.evaluate_model(tiny_qa_model, data_file, titles=["Marie_Curie"], progress=False, distractors=-1)


def sigterm_at_step_2(monkeypatch):
    """Make the trainer receive SIGTERM while step 2's batch is being prepared; returns the real
    ``collate`` (set it back to let a resumed run finish)."""
    import os
    import signal

    real_collate, calls = T.collate, {"n": 0}

    def collate_then_stop(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_collate(*a, **k)

    monkeypatch.setattr(T, "collate", collate_then_stop)
    return real_collate


def test_a_run_stopped_by_sigterm_and_resumed_logs_what_an_uninterrupted_run_logs(tiny_qa_model, data_file, tmp_path,
                                                                                   monkeypatch):
    kw = dict(encoder=str(tiny_qa_model), max_length=48, stride=16, batch_size=2, lr=1e-3, n_dev=1,
              checkpoint_every=0, progress=False, device="cpu", evaluate=False, max_steps=3)

    def losses(out):
        lines = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        return [(d["step"], d["loss"]) for d in lines if "event" not in d]

    T.train_reader(data_file, tmp_path / "straight", **kw)
    real_collate = sigterm_at_step_2(monkeypatch)
    stopped = T.train_reader(data_file, tmp_path / "cut", **kw)
    monkeypatch.setattr(T, "collate", real_collate)
    assert stopped["step"] == 2 and not stopped["finished"]
    resumed = T.train_reader(data_file, tmp_path / "cut", resume=True, **kw)
    assert resumed["finished"]
    assert losses(tmp_path / "cut") == losses(tmp_path / "straight")  # the step-3 line: the mean of all 3 steps


def test_the_command_stopped_by_sigterm_says_how_to_resume_and_exits_143(tiny_qa_model, data_file, tmp_path,
                                                                         monkeypatch, capsys):
    import signal

    real_collate = sigterm_at_step_2(monkeypatch)
    out = tmp_path / "cut"
    argv = [str(data_file), "--out", str(out), "--encoder", str(tiny_qa_model), "--max-length", "48", "--stride", "16",
            "--batch-size", "2", "--max-steps", "3", "--checkpoint-every", "0", "--no-eval", "--quiet", "--n-dev", "1"]
    assert T.main(argv) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "stopped at step 2 of 3" in err and "--resume" in err and str(out / T.CHECKPOINT_NAME) in err
    monkeypatch.setattr(T, "collate", real_collate)
    assert T.main([*argv, "--resume"]) == 0
