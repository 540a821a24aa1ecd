import pytest

from rag.documents import load_documents, parse_article
from rag.errors import DocumentsError
from conftest import CHROME_WORDS, SEEDS, sources


def test_seed_ids_titles_and_bodies():
    docs, warnings = load_documents(SEEDS)
    assert warnings == []
    by_id = {d.doc_id: d for d in docs}
    assert sorted(by_id) == sorted(sources())
    assert by_id["004_6bcff8eae5855749"].title == "Ankara, Moscow negotiating timeframe for S-400 deliveries to Turkey"
    assert by_id["000_58e3d6b70d3dc322"].title == "Russia, Turkey agree to speed up delivery of S-400s"
    src = sources()
    for d in docs:
        assert src[d.doc_id][d.title_start:d.title_end] == d.title
        for s, e in d.segments:
            assert src[d.doc_id][s:e].strip() == src[d.doc_id][s:e]
            for word in CHROME_WORDS:
                assert word not in src[d.doc_id][s:e], (d.doc_id, word)
    # The body ends with the article's last sentence, before the chrome.
    assert by_id["003_f440c37d64f155e6"].body.endswith("but this could be brought forward\u2019, he added.")
    assert by_id["002_907407133a9267c9"].body.endswith("supplement the S-400.")
    assert by_id["001_1040b1609e3dded8"].body.startswith("Moscow. Russia and Turkey")  # summary box dropped
    assert "Dmitry Shugayev" in by_id["001_1040b1609e3dded8"].body


def test_rules_are_general_not_these_headlines():
    text = ("Big headline about ports\n"
            "The port of Gdansk handled 10 million tonnes in 2023, officials said.\n"
            "It plans to expand.\n"
            "Trending now\n-\nFarmers protest in Paris\nTractors blocked roads.\n-\nNew rail link opens\n")
    d = parse_article(text, "x")
    assert d.title == "Big headline about ports"
    assert d.body == "The port of Gdansk handled 10 million tonnes in 2023, officials said.\nIt plans to expand."


def test_summary_box_kept_when_it_adds_information():
    text = ("A headline of four words\nKey facts:\n\u2022 Something said nowhere else in the text at all.\n"
            "The body says another thing entirely, at length.\n")
    d = parse_article(text, "x")
    assert "Something said nowhere else" in d.body


def test_navigation_line_before_title_skipped():
    d = parse_article("Home\n\nA real headline here\n\nBody sentence one.\n", "x")
    assert d.title == "A real headline here"


def test_crlf_offsets_match_read_text(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"Title of the piece\r\nFirst body line.\r\nSecond body line.\r\n")
    docs, _ = load_documents(tmp_path)
    src = p.read_text(encoding="utf-8")
    (s, e), = docs[0].segments
    assert src[s:e] == "First body line.\nSecond body line."


def test_bad_files_warn_and_rest_indexed(tmp_path):
    (tmp_path / "good.txt").write_text("A good title line\nA body sentence.\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 title here\nBody.\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "titleonly.txt").write_text("Only a title line here\n", encoding="utf-8")
    (tmp_path / "dup.txt").write_text("A good title line\nA body sentence.\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nested.txt").write_text("Nested article title\nNested body.\n", encoding="utf-8")
    docs, warnings = load_documents(tmp_path)
    assert [d.doc_id for d in docs] == ["dup", "sub/nested"] or [d.doc_id for d in docs] == ["good", "sub/nested"]
    text = "\n".join(warnings)
    for name in ("latin1.txt", "empty.txt", "bin.txt", "titleonly.txt"):
        assert name in text
    assert "not UTF-8" in text and "binary" in text and "duplicate" in text


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(DocumentsError, match="does not exist"):
        load_documents(tmp_path / "nope")
    with pytest.raises(DocumentsError, match="no usable"):
        load_documents(tmp_path)


def test_symlink_out_of_folder_skipped(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("Secret title line\nSecret body.\n", encoding="utf-8")
    docs_dir = tmp_path / "docs"
    docs_dir.mkdir()
    (docs_dir / "a.txt").write_text("A good title line\nA body sentence.\n", encoding="utf-8")
    (docs_dir / "link.txt").symlink_to(outside)
    docs, warnings = load_documents(docs_dir)
    assert [d.doc_id for d in docs] == ["a"]
    assert any("outside the docs folder" in w for w in warnings)
