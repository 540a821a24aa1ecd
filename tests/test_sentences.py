from rag.sentences import split_sentences


def spans(text):
    return [text[a:b] for a, b in split_sentences(text)]


def test_basic_and_abbreviations():
    assert spans("Dr. Smith went home. It was late.") == ["Dr. Smith went home.", "It was late."]
    assert spans("He said 'yes.' Then left.") == ["He said 'yes.'", "Then left."]


def test_lines_are_boundaries_and_fragments_join():
    assert spans("Moscow. Russia and Turkey talk.\nNext line here.") == ["Moscow. Russia and Turkey talk.", "Next line here."]
    assert spans("ANTALYA, March 29. /TASS/. The deal holds.") == ["ANTALYA, March 29. /TASS/. The deal holds."]


def test_offsets_with_window():
    text = "xx A b c. D e f. yy"
    out = split_sentences(text, 3, 16)
    assert [text[a:b] for a, b in out] == ["A b c. D e f."] or [text[a:b] for a, b in out] == ["A b c.", "D e f."]
