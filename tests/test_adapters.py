"""LoRA on a tiny random MPNet: our merge equals peft's merge_and_unload; train, resume, ship, read."""
from __future__ import annotations

import json

import pytest
import torch

import rag
from rag import adapters


def test_merge_matches_peft(tiny_mpnet):
    from transformers import AutoModelForQuestionAnswering

    names = adapters.adapted_module_names(AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)))
    model = adapters.attach_lora(AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)), rank=4)
    assert any(n.endswith(".attn.q") for n in names) and any(n.endswith("intermediate.dense") for n in names)
    with torch.no_grad():  # lora_B starts at zero: make the adapter do something
        for n, p in model.named_parameters():
            if "lora_B" in n or "modules_to_save" in n:
                p.normal_(0, 0.5)
    tensors, meta = adapters.lora_state(model)
    assert meta["modules"] == sorted(names) and len(names) == 2 * 6 and meta["scaling"] == 2.0
    ids = torch.randint(5, 1000, (2, 12))
    mine = AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)).eval()
    adapters.merge_into(mine, tensors, meta)
    ref = model.merge_and_unload().eval()
    with torch.no_grad():
        a, b = mine(input_ids=ids), ref(input_ids=ids)
    assert torch.allclose(a.start_logits, b.start_logits, atol=1e-5)
    assert torch.allclose(a.end_logits, b.end_logits, atol=1e-5)
    plain = AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(input_ids=ids).start_logits, a.start_logits, atol=1e-3)


def test_merge_refuses_another_base(tiny_mpnet):
    from transformers import AutoModelForQuestionAnswering

    from rag.errors import ModelError

    model = adapters.attach_lora(AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)), rank=2)
    tensors, meta = adapters.lora_state(model)
    meta = {**meta, "modules": meta["modules"] + ["mpnet.encoder.layer.9.attn.q"]}
    with pytest.raises(ModelError, match="another base"):
        adapters.merge_into(AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)), tensors, meta)


def test_lora_training_resumes_exports_and_reads(tiny_mpnet, tmp_path, tiny_squad):
    from rag.readers.neural import NeuralReader
    from rag.schema import Passage
    from rag.train.neural import export_fp16, train_reader

    data = tiny_squad
    out = tmp_path / "run"
    kw = dict(encoder=str(tiny_mpnet), dev_titles=["D"], batch_size=4, lora_rank=4, lr=1e-3,
              checkpoint_every=2, progress=False, evaluate=False, max_length=64, stride=32)
    first = train_reader(data, out, max_steps=2, **kw)
    assert first["finished"] and (out / "checkpoint" / "adapter_model.safetensors").is_file()
    second = train_reader(data, out, max_steps=4, resume=True, **kw)
    assert second["step"] == 4 and second["trainable_parameters"] < 60_000
    starts = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()
              if '"start"' in line]
    assert [s["resumed_at_step"] for s in starts] == [0, 2]
    shipped = export_fp16(out / "final", tmp_path / "shipped")
    assert adapters.is_adapter_folder(shipped)
    assert json.loads((shipped / "adapter.json").read_text())["dtype"] == "float16"
    assert json.loads((shipped / "adapter.json").read_text())["base"]["folder"] == str(tiny_mpnet)
    reader = NeuralReader(shipped)
    text = "Deliveries began in July 2019."
    p = Passage(doc_id="d", start=0, end=len(text), text=text, score=1.0, title="t", chunk_id="c0")
    res = reader.read("When did deliveries begin?", [p])
    for c in res.candidates:
        assert text[c.start:c.end] == c.text


def test_lora_warm_start_from_a_saved_adapter(tiny_mpnet, tmp_path, tiny_squad):
    """--init-adapter: a new run starts from a saved adapter's factors and head (rank and alpha taken
    from it); with lr 0 the run's export is that adapter again, bit for bit in fp16."""
    from safetensors.torch import load_file

    from rag.train.neural import export_fp16, train_reader

    data = tiny_squad
    kw = dict(encoder=str(tiny_mpnet), dev_titles=["D"], batch_size=4, checkpoint_every=2, progress=False,
              evaluate=False, max_length=64, stride=32)
    train_reader(data, tmp_path / "a", max_steps=2, lora_rank=4, lr=1e-2, **kw)
    saved = export_fp16(tmp_path / "a" / "final", tmp_path / "saved")
    stage1 = (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()
    assert (saved / "train_log.jsonl").read_text().splitlines() == stage1  # the export carries its log
    m = train_reader(data, tmp_path / "b", max_steps=1, lr=0.0, init_adapter=saved, **kw)
    assert m["finished"]
    lines = (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()
    assert lines[:len(stage1)] == stage1  # the lineage first: stage 1's start, steps and end
    start = json.loads(lines[len(stage1)])
    assert start["event"] == "start" and start["init_adapter"] == str(saved)
    assert start["lora_rank"] == 4 and start["lora_alpha"] == 8
    assert [json.loads(x).get("event") for x in lines].count("start") == 2
    again_dir = export_fp16(tmp_path / "b" / "final", tmp_path / "again")
    assert (again_dir / "train_log.jsonl").read_text().splitlines() == lines  # both stages travel on
    again = load_file(str(again_dir / "adapter.safetensors"))
    first = load_file(str(saved / "adapter.safetensors"))
    assert set(again) == set(first) and any(float(t.abs().max()) > 0 for k, t in first.items() if "lora_B" in k)
    assert all(torch.equal(again[k], first[k]) for k in first)
    with pytest.raises(rag.ModelError, match="rank 4 and alpha 8.*--lora-rank 4"):
        train_reader(data, tmp_path / "c", max_steps=1, lora_rank=2, init_adapter=saved, **kw)
    with pytest.raises(rag.ModelError, match="holds no adapter.json"):
        train_reader(data, tmp_path / "d", max_steps=1, init_adapter=tmp_path, **kw)


def test_evaluate_model_in_each_precision(tiny_mpnet, tiny_squad):
    """The dev measurement behind inference.json: the same questions scored in fp32, int8 and bf16
    (bf16 weights, as NeuralReader runs them on a CPU with native bf16); an unknown one refused."""
    from rag.train.neural import evaluate_model, load_model

    data = tiny_squad
    runs = {p: evaluate_model(tiny_mpnet, data, titles=["T"], precision=p, progress=False)
            for p in ("fp32", "int8", "bf16")}
    for p, m in runs.items():
        assert m["precision"] == p and m["total"] == 13 and 0.0 <= m["best_f1"] <= 100.0
    _, model = load_model(tiny_mpnet, precision="bf16")
    assert next(model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision must be fp32, int8 or bf16"):
        load_model(tiny_mpnet, precision="half")


def _tuned_copy(folder, seed=1, rank=2, embeddings=False):
    """The tiny base 'fully fine-tuned' by hand: a rank-``rank`` change to every adapted weight, new
    biases, LayerNorms and head (and, when asked, moved embeddings)."""
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(str(folder)).float()
    g = torch.Generator().manual_seed(seed)
    mods = dict(model.named_modules())
    with torch.no_grad():
        for name in adapters.adapted_module_names(model):
            w = mods[name].weight
            w.add_(torch.randn(w.shape[0], rank, generator=g) @ torch.randn(rank, w.shape[1], generator=g) * 0.2)
            mods[name].bias.add_(torch.randn(mods[name].bias.shape, generator=g) * 0.1)
        for n, p in model.named_parameters():
            if "LayerNorm" in n and ".embeddings." not in n or n.startswith("qa_outputs."):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
            if embeddings and n.endswith("word_embeddings.weight"):
                p.add_(0.01)
    return model.eval()


def test_svd_adapter_of_a_full_finetune(tiny_mpnet):
    """A full fine-tune compressed to the adapter format: at the rank of its weight changes the
    merged model answers as the fine-tune does (biases and LayerNorms travel whole); a lower rank
    loses some of it and says how much; moved embeddings are refused with the fix."""
    from transformers import AutoModelForQuestionAnswering

    def base():
        return AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)).float().eval()

    tuned = _tuned_copy(tiny_mpnet, rank=2)
    ids = torch.randint(5, 1000, (2, 12))
    with torch.no_grad():
        want = tuned(input_ids=ids)
    tensors, meta = adapters.svd_adapter(base(), tuned, rank=2)
    assert meta["scaling"] == 1.0 and meta["rank"] == 2 and len(meta["modules"]) == 12
    assert meta["full"] and all(".embeddings." not in n for n in meta["full"])
    assert any(n.endswith("attn.q.bias") for n in meta["full"]) and any("LayerNorm" in n for n in meta["full"])
    assert meta["compression"]["relative_error_max"] < 1e-4
    merged = base()
    adapters.merge_into(merged, tensors, meta)
    with torch.no_grad():
        got = merged(input_ids=ids)
    assert torch.allclose(got.start_logits, want.start_logits, atol=1e-4)
    assert torch.allclose(got.end_logits, want.end_logits, atol=1e-4)
    t1, m1 = adapters.svd_adapter(base(), tuned, rank=1)
    assert 0.2 < m1["compression"]["relative_error_mean"] < 1.0
    svds: dict = {}  # compress's rank search: decompose once at rank 2, truncate to rank 1
    adapters.svd_adapter(base(), tuned, rank=2, svds=svds)
    assert len(svds) == 12
    t1c, m1c = adapters.svd_adapter(base(), tuned, rank=1, svds=svds)
    assert m1c["compression"] == m1["compression"] and all(torch.equal(t1c[k], t1[k]) for k in t1)
    lossy = base()
    adapters.merge_into(lossy, t1, m1)
    with torch.no_grad():
        assert not torch.allclose(lossy(input_ids=ids).start_logits, want.start_logits, atol=1e-3)
    with pytest.raises(rag.ModelError, match="changed the embeddings.*--freeze-embeddings"):
        adapters.svd_adapter(base(), _tuned_copy(tiny_mpnet, embeddings=True), rank=2)


def test_compress_a_full_finetune_run(tiny_mpnet, tmp_path, tiny_squad):
    """rag train-reader --freeze-embeddings (full fine-tune) -> python -m rag.train.compress: the
    largest rank under --max-mb, an fp16 adapter the reader loads, the run's log carried along; a
    size that no rank fits, a LoRA folder and a LoRA warm start from the result are refused with
    the fix, and a refused run leaves the folder it would have replaced as it was."""
    from safetensors.torch import load_file
    from transformers import AutoModelForQuestionAnswering

    from rag.readers.neural import NeuralReader
    from rag.schema import Passage
    from rag.train.compress import compress, main
    from rag.train.neural import train_reader

    data = tiny_squad
    run = tmp_path / "full"
    m = train_reader(data, run, encoder=str(tiny_mpnet), dev_titles=["D"], batch_size=4, max_steps=2, lr=1e-2,
                     progress=False, evaluate=False, max_length=64, stride=32, freeze_embeddings=True)
    assert m["finished"] and m["freeze_embeddings"]
    before = AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet))
    after = AutoModelForQuestionAnswering.from_pretrained(str(run / "final"))
    emb = "mpnet.embeddings.word_embeddings.weight"
    assert torch.equal(before.state_dict()[emb], after.state_dict()[emb])
    q = "mpnet.encoder.layer.0.attention.attn.q.weight"
    assert not torch.equal(before.state_dict()[q], after.state_dict()[q])

    info = compress(run / "final", tmp_path / "svd", base=str(tiny_mpnet), max_mb=0.05)
    meta = json.loads((tmp_path / "svd" / "adapter.json").read_text())
    # 12 adapted Linear layers of the tiny model: 8 of 32x32, 2 of 64x32, 2 of 32x64 -> 896 numbers a rank
    assert meta["rank"] == info["rank"] and meta["dtype"] == "float16" and meta["base"]["folder"] == str(tiny_mpnet)
    assert info["bytes"] <= 50_000 and info["rank"] >= 1
    assert info["bytes"] + 2 * 896 > 50_000 or info["rank"] == 32  # the largest rank that fits
    assert all(t.dtype == torch.float16 for t in load_file(str(tmp_path / "svd" / "adapter.safetensors")).values())
    assert (tmp_path / "svd" / "train_log.jsonl").read_text() == (run / "train_log.jsonl").read_text()
    reader = NeuralReader(tmp_path / "svd")
    text = "Deliveries began in July 2019."
    p = Passage(doc_id="d", start=0, end=len(text), text=text, score=1.0, title="t", chunk_id="c0")
    for c in reader.read("When did deliveries begin?", [p]).candidates:
        assert text[c.start:c.end] == c.text

    kept = (tmp_path / "svd" / "adapter.safetensors").read_bytes()
    assert main([str(run / "final"), "--out", str(tmp_path / "svd"), "--base", str(tiny_mpnet),
                 "--rank", "32", "--max-mb", "0.01"]) == 2
    assert (tmp_path / "svd" / "adapter.safetensors").read_bytes() == kept
    with pytest.raises(rag.ModelError, match="no adapter fits in 0.001 MB.*raise --max-mb"):
        compress(run / "final", tmp_path / "x", base=str(tiny_mpnet), max_mb=0.001)
    with pytest.raises(rag.ModelError, match="already holds an adapter"):
        compress(tmp_path / "svd", tmp_path / "x", base=str(tiny_mpnet))
    with pytest.raises(rag.ModelError, match="compressed full fine-tune.*cannot start from it"):
        train_reader(data, tmp_path / "warm", encoder=str(tiny_mpnet), dev_titles=["D"], batch_size=4,
                     max_steps=1, progress=False, evaluate=False, max_length=64, stride=32,
                     init_adapter=tmp_path / "svd")


def _random_adapter(tiny_mpnet, seed, rank):
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(seed)
    model = adapters.attach_lora(AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)), rank=rank)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n or "modules_to_save" in n:
                p.normal_(0, 0.5)
    return adapters.lora_state(model)


def test_soup_is_the_weighted_mean_of_the_merged_weights(tiny_mpnet, tmp_path):
    """The soup of two adapters (ranks 2 and 3), merged, has every weight and the head at the
    weighted mean of the two merged models; the log holds both lineages and a soup record; bad
    input is refused before anything is written."""
    from transformers import AutoModelForQuestionAnswering

    from rag.errors import InputError, ModelError
    from rag.train import soup

    base = {"name": "tiny", "sha256": "0" * 64}
    folders = []
    for seed, rank in ((1, 2), (2, 3)):
        t, m = _random_adapter(tiny_mpnet, seed, rank)
        f = adapters.save_adapter(t, m, tmp_path / f"a{seed}", base=base, dtype="float32")
        (f / "train_log.jsonl").write_text('{"step": 50, "stage": 1}\n' + ('{"step": 50, "stage": 2}\n' if seed == 2 else ""))
        folders.append(f)
    record = soup.soup(folders, tmp_path / "s", weights=[3, 1], dtype="float32")
    assert [i["weight"] for i in record["ingredients"]] == [0.75, 0.25] and record["rank"] == 5
    tensors, meta = adapters.read_adapter(tmp_path / "s" / "export")
    assert meta["rank"] == 5 and meta["scaling"] == 1.0 and meta["base"] == base

    def merged(folder):
        m = AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)).eval()
        adapters.merge_into(m, *adapters.read_adapter(folder))
        return dict(m.named_parameters())

    one, two, mix = merged(folders[0]), merged(folders[1]), merged(tmp_path / "s" / "export")
    moved = 0
    for name, p in mix.items():
        want = 0.75 * one[name] + 0.25 * two[name]
        assert torch.allclose(p, want, atol=1e-5), name
        moved += not torch.allclose(one[name], two[name])
    assert moved > 12  # the adapted weights and the head differ between the two, so the test can fail
    log = (tmp_path / "s" / "export" / "train_log.jsonl").read_text().splitlines()
    assert log[:2] == ['{"step": 50, "stage": 1}', '{"step": 50, "stage": 2}'] and json.loads(log[2])["event"] == "soup"
    assert soup.main([str(folders[0]), str(folders[1]), "--out", str(tmp_path / "cli")]) == 0
    assert adapters.read_adapter(tmp_path / "cli" / "export")[1]["rank"] == 5

    with pytest.raises(InputError, match="at least two"):
        soup.soup(folders[:1], tmp_path / "x")
    with pytest.raises(InputError, match="positive"):
        soup.soup(folders, tmp_path / "x", weights=[1, 0])
    other = adapters.save_adapter(*_random_adapter(tiny_mpnet, 3, 2), tmp_path / "b", base={**base, "sha256": "1" * 64})
    with pytest.raises(ModelError, match="different bases"):
        soup.soup([folders[0], other], tmp_path / "x")
    with pytest.raises(ModelError, match="no adapter.json"):
        soup.soup([folders[0], tmp_path], tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert soup.main([str(folders[0]), str(folders[1]), "--out", str(tmp_path / "x"), "--weights", "a,b"]) == 2


def test_training_padding_to_a_multiple_changes_no_loss(tiny_mpnet):
    """Training batches are padded to TRAIN_PAD_MULTIPLE tokens (a bounded set of shapes for the CPU
    kernels); with the padding masked out of the logits the loss is the one of the tight batch."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from rag.train.neural import TRAIN_PAD_MULTIPLE, collate, masked_logits

    tok = AutoTokenizer.from_pretrained(str(tiny_mpnet))
    model = AutoModelForQuestionAnswering.from_pretrained(str(tiny_mpnet)).eval()
    feats = []
    for q, p, (s, e) in [("Who?", "Alexander Mikheyev heads Rosoboronexport.", (5, 6)),
                         ("When did the deliveries begin?", "They began on July 12, 2019, in Ankara, as planned.", (0, 0))]:
        ids = tok(q, p)["input_ids"]
        feats.append({"input_ids": ids, "start_positions": s, "end_positions": e, "impossible": s == 0})
    tight = collate(feats, tok.pad_token_id)
    padded = collate(feats, tok.pad_token_id, pad_to_multiple=TRAIN_PAD_MULTIPLE)
    assert padded["input_ids"].shape[1] == TRAIN_PAD_MULTIPLE > tight["input_ids"].shape[1]
    assert torch.equal(padded["input_ids"][:, : tight["input_ids"].shape[1]], tight["input_ids"])

    def loss(batch, mask=True):
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
        with torch.no_grad():
            out = model(**inputs)
        s, e = out.start_logits, out.end_logits
        if mask:
            s, e = masked_logits(s, batch["attention_mask"]), masked_logits(e, batch["attention_mask"])
        ce = torch.nn.functional.cross_entropy
        return float(ce(s, batch["start_positions"]) + ce(e, batch["end_positions"]))

    assert abs(loss(tight) - loss(padded)) < 1e-4
    # unmasked, the extra padding positions would take probability mass and move the loss
    assert abs(loss(tight, mask=False) - loss(padded, mask=False)) > 1e-3
