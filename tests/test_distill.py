"""Distillation (rag.train.distill): teacher logits carried across tokenizers by character offsets,
the KL term, and a tiny MiniLM-vocabulary student taught by a tiny MPNet teacher end to end."""
from __future__ import annotations

import math

import pytest
import torch

from rag.train import distill

NEG = float("-inf")


def test_align_carries_logits_by_character_offsets():
    # passage "Deliveries began" at shift 100; the student splits "Deliveries" as "Deliver"+"ies",
    # the teacher keeps it whole: "ies" has no teacher start, "Deliver" no teacher end.
    student = [None, None, (100, 107), (107, 110), (111, 116), None]
    teacher = [None, None, None, (0, 10), (11, 16), None, None]  # relative to the window text
    s, e = distill.align(student, 6, teacher, 100, [9, 0, 0, 1, 2, 0, 0], [8, 0, 0, 3, 4, 0, 0])
    assert s == [9, NEG, 1, NEG, 2, NEG]
    assert e == [8, NEG, NEG, 3, 4, NEG]


def test_kd_loss_is_zero_on_agreement_and_ignores_unmatched_positions():
    t = torch.tensor([[2.0, NEG, 1.0, 0.5], [0.0, 3.0, NEG, NEG]])
    same = torch.tensor([[2.0, 50.0, 1.0, 0.5], [0.0, 3.0, -7.0, 9.0]], requires_grad=True)
    assert torch.allclose(distill.kd_loss(same, t, 2.0), torch.zeros(2), atol=1e-6)
    other = torch.tensor([[0.0, 0.0, 3.0, 0.5], [3.0, 0.0, 0.0, 0.0]], requires_grad=True)
    kd = distill.kd_loss(other, t, 2.0)
    assert (kd > 0.1).all()
    kd.sum().backward()
    assert other.grad[0, 1] == 0 and other.grad[1, 2] == 0 and other.grad[0, 0] < 0  # pulled up to the teacher
    # the value: T^2 * KL over the matched positions
    p = torch.softmax(torch.tensor([2.0, 1.0, 0.5]) / 2, 0)
    q = torch.softmax(torch.tensor([0.0, 3.0, 0.5]) / 2, 0)
    assert math.isclose(float(kd[0].detach()), 4 * float((p * (p.log() - q.log())).sum()), rel_tol=1e-5)
    padded = distill.pad_targets([torch.tensor([1.0, 2.0]), torch.tensor([3.0])], 3)
    assert padded.tolist() == [[1.0, 2.0, NEG], [3.0, NEG, NEG]]


def test_a_student_learns_from_a_teacher_with_another_tokenizer(tiny_qa_model, tiny_mpnet, tiny_squad, tmp_path,
                                                             monkeypatch):
    from rag.errors import InputError, ModelError
    from rag.train.neural import train_reader

    data = tiny_squad
    kw = dict(encoder=str(tiny_qa_model), dev_titles=["D"], batch_size=4, lr=1e-3, checkpoint_every=1,
              progress=False, evaluate=False, max_length=48, stride=16)
    out = tmp_path / "run"
    calls = []
    real = distill.teacher_logits

    def counted(*a, **k):
        got = real(*a, **k)
        calls.append(got)
        return got

    monkeypatch.setattr(distill, "teacher_logits", counted)
    first = train_reader(data, out, max_steps=1, teacher=tiny_mpnet, distill_alpha=0.3, **kw)
    assert first["finished"] and first["teacher"].startswith(str(tiny_mpnet) + "@")
    assert first["distill_alpha"] == 0.3 and (out / distill.TEACHER_FILE).is_file()
    soft = calls[0]
    assert len(soft) == first["train_windows"]
    # the two tokenizers agree on these words: nearly every passage token got the teacher's logits
    matched = sum(int(torch.isfinite(s[1:]).sum()) for s, _ in soft)
    from transformers import AutoTokenizer

    from rag.eval.datasets import squad_articles
    from rag.train.neural import featurize, flatten

    feats = featurize(flatten(a for a in squad_articles(data) if a["title"] != "D"),
                      AutoTokenizer.from_pretrained(str(tiny_qa_model)), max_length=48, stride=16)
    passage_tokens = sum(f["ctx_end"] - f["ctx_start"] + 1 for f in feats)
    assert 0.9 * passage_tokens <= matched <= passage_tokens  # never the question or [SEP]
    assert all(math.isfinite(float(s[0])) and math.isfinite(float(e[0])) for s, e in soft)
    second = train_reader(data, out, max_steps=2, resume=True, teacher=tiny_mpnet, distill_alpha=0.3, **kw)
    assert second["step"] == 2 and len(calls) == 1  # the cached logits were reused
    with pytest.raises(InputError, match="same --teacher"):
        train_reader(data, out, max_steps=3, resume=True, **kw)
    with pytest.raises(InputError, match="distill-alpha"):
        train_reader(data, tmp_path / "x", max_steps=1, teacher=tiny_mpnet, distill_alpha=1.0, **kw)
    with pytest.raises(ModelError, match="holds no reader"):
        train_reader(data, tmp_path / "x", max_steps=1, teacher=tmp_path, **kw)
    assert not (tmp_path / "x").exists()
