import pytest

import rag
from rag.chunking import ChunkerSettings, chunk_document, count_tokens
from rag.documents import load_documents, parse_article
from rag.errors import InputError
from conftest import CHROME_WORDS, SEEDS


def test_chunks_exact_offsets_ids_and_budget():
    docs, _ = load_documents(SEEDS)
    settings = ChunkerSettings(max_tokens=64, overlap_tokens=16)
    for d in docs:
        chunks = chunk_document(d, settings)
        assert [c.chunk_id for c in chunks] == [f"{d.doc_id}:{i}" for i in range(len(chunks))]
        for c in chunks:
            assert d.source[c.start:c.end] == c.text
            assert c.tokens == count_tokens(c.text) <= 64
            assert any(s <= c.start and c.end <= e for s, e in d.segments)  # never crosses removed chrome
            assert not any(w in c.text for w in CHROME_WORDS)
        # Every body character is covered by some chunk (whitespace between sentences aside).
        covered = set()
        for c in chunks:
            covered.update(range(c.start, c.end))
        for s, e in d.segments:
            missing = [i for i in range(s, e) if i not in covered and not d.source[i].isspace()]
            assert not missing, (d.doc_id, d.source[missing[0]:missing[0] + 30])


def test_overlap_repeats_trailing_sentences():
    text = "Title line of the test\n" + " ".join(f"Sentence number {i} is here." for i in range(12)) + "\n"
    d = parse_article(text, "t")
    chunks = chunk_document(d, ChunkerSettings(max_tokens=30, overlap_tokens=8))
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # consecutive chunks share the last sentence
        assert a.start < b.start  # and always move forward


def test_long_sentence_cut_between_words():
    text = "A title for a long one\n" + " ".join(["word"] * 400) + ".\n"
    d = parse_article(text, "t")
    chunks = chunk_document(d, ChunkerSettings(max_tokens=50, overlap_tokens=0))
    assert len(chunks) >= 8
    assert all(c.tokens <= 50 and c.text.startswith("word") for c in chunks)


def test_fits_check_splits_further():
    docs, _ = load_documents(SEEDS)
    # An encoder that reads only 20 whitespace words: no chunk may be longer, whatever tiktoken says.
    chunks = chunk_document(docs[1], ChunkerSettings(max_tokens=500, overlap_tokens=0),
                            fits=lambda t: len(t.split()) <= 20)
    assert chunks and all(len(c.text.split()) <= 20 for c in chunks)


def test_no_seed_chunk_exceeds_the_embedder_limit(seed_qa, embedder):
    # The real encoder's own tokenizer, with the title prefix it is encoded with.
    for c in seed_qa.index.chunks:
        assert embedder.count_tokens(f"{c.title}\n{c.text}") <= embedder.max_seq_length


def test_the_tokenizer_alone_counts_as_the_embedder_does(seed_qa, embedder, tmp_path):
    """What a Ray chunking worker holds (the tokenizer, no weights) decides what fits exactly as the
    loaded model does, the title prefix and texts over the limit included."""
    from rag.embedding import EncoderTokens

    tokens = EncoderTokens(embedder.path, embedder.max_seq_length)
    texts = [f"{c.title}\n{c.text}" for c in seed_qa.index.chunks]
    texts += ["", "S-400 «Triumf» — $2.5 billion", " ".join(["Ankara"] * 400)]
    assert [tokens.count_tokens(t) for t in texts] == [embedder.count_tokens(t) for t in texts]
    assert [tokens.fits(t) for t in texts] == [embedder.fits(t) for t in texts]
    assert not tokens.fits(texts[-1]) and tokens.max_seq_length == embedder.max_seq_length
    (tmp_path / "m").mkdir()
    with pytest.raises(rag.ModelError, match="tokenizer"):
        EncoderTokens(tmp_path / "m", 256)


def test_a_huge_chunk_budget_still_respects_the_encoder(embedder, tmp_path):
    import rag

    long_body = " ".join(f"The delegation discussed item number {i} with officials at length." for i in range(200))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "long.txt").write_text("A long article title\n" + long_body + "\n", encoding="utf-8")
    info = rag.build_index(tmp_path / "docs", tmp_path / "idx", embedder=embedder,
                           chunker=ChunkerSettings(max_tokens=2000, overlap_tokens=0))
    qa = rag.load(tmp_path / "idx", embedder=embedder)
    assert info.num_chunks > 1
    for c in qa.index.chunks:
        assert embedder.count_tokens(f"{c.title}\n{c.text}") <= embedder.max_seq_length


def test_settings_validated():
    with pytest.raises(InputError, match="overlap_tokens"):
        ChunkerSettings(max_tokens=32, overlap_tokens=32)
    with pytest.raises(InputError, match="max_tokens"):
        ChunkerSettings(max_tokens=2)
