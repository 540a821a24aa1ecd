"""The reader table's markdown from a result of the shape rag.eval.reader_table writes (no models)."""
from __future__ import annotations

from rag.eval.reader_table import markdown


def _gold(reader, split, f1):
    return {"reader": reader, "split": split, "questions": 69, "hasans_f1": f1, "f1": f1 - 0.05,
            "noans_acc": 0.8, "evidence_contains": f1 + 0.1, "best_f1": f1, "threshold": 0.3,
            "p50_ms": 123.4, "p95_ms": 200.0, "paraphrased_hasans_f1": f1 - 0.2, "literal_hasans_f1": f1 + 0.1,
            "by_type_hasans_f1": {"date": 0.9, "person": f1}}


def test_markdown_has_every_reader_and_section():
    res = {"date": "2026-12-02", "machine": "x86_64, 2 cores", "command": "python -m rag.eval.reader_table", "seconds": 600,
           "squad_dev": [{"reader": "minilm", "total": 600, "HasAns_f1_span": 67.9, "best_f1": 59.1,
                          "best_f1_HasAns_f1": 60.0, "best_f1_NoAns_acc": 55.0, "questions_per_s": 20.0},
                         {"reader": "mpnet int8", "total": 600, "HasAns_f1_span": 78.0, "best_f1": 70.2,
                          "best_f1_HasAns_f1": 71.0, "best_f1_NoAns_acc": 66.0, "questions_per_s": 3.0}],
           "new_wiki": [{"reader": "minilm", "total": 400, "HasAns_f1": 69.0},
                        {"reader": "mpnet int8", "total": 400, "HasAns_f1": 80.5}],
           "squad_near_misses": [{"reader": "mpnet bf16", "total": 300, "distractors": 4, "HasAns_f1_span": 74.0,
                                  "best_f1": 66.0, "best_f1_HasAns_f1": 65.0, "best_f1_NoAns_acc": 70.0,
                                  "questions_per_s": 1.5}],
           "gold": [_gold("fast", "test", 0.54), _gold("fused", "test", 0.70)]}
    md = markdown(res)
    assert "| mpnet int8 | 0.780 | 0.702 | 0.710 | 0.660 | 3.0 |" in md  # percentages become fractions
    assert "**SQuAD dev with near misses** (300 of those questions" in md and "the 4 paragraphs" in md
    assert "| mpnet bf16 | 0.740 | 0.660 | 0.650 | 0.700 | 1.5 |" in md
    assert "new-wiki" in md and "mpnet int8 0.805" in md
    assert "**Gold test split** (69 questions" in md and "| fused | 0.700 |" in md
    assert "| fast | 0.900 | 0.540 |" in md  # per-type row, types sorted (date, person)
    assert "Gold dev split" not in md  # no rows, no section


def test_near_misses_option_is_checked_before_anything_runs(capsys, tmp_path):
    import pytest

    from rag.eval.reader_table import main

    out = tmp_path / "table"
    with pytest.raises(SystemExit):
        main(["--near-misses", "-1", "--squad", "pool.json.gz", "--splits", "", "--out", str(out)])
    assert "pass 0 (none) or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--near-misses", "4", "--splits", "", "--out", str(out)])
    assert "pass --squad too" in capsys.readouterr().err
    assert not out.exists()  # refused before anything is written
