"""Other names for the same thing: metonyms, spellings, and where they are used."""
from rag.aliases import aliases_of, expansions
from rag.answer import unknown_names
from rag.lexical import LexicalIndex


def test_capitals_and_seats_of_power_stand_for_their_country():
    assert aliases_of("Ankara") == ("Turkey", "Turkish")
    assert aliases_of("the Kremlin") == () and "Russia" in aliases_of("kremlin")
    assert aliases_of("Istanbul") == ()  # not a capital: no alias


def test_expansions_add_only_what_the_text_does_not_say():
    assert expansions("What does Moscow still need from Ankara?") == ["Russia", "Russian", "Turkey", "Turkish"]
    assert expansions("Did Turkey tell Ankara?") == ["Turkish"]  # "Turkey" is already there
    assert "defense" in expansions("Who is the defence chief?")
    assert "defence" in expansions("the Defense Minister")
    # Multi-word names are matched whole, single words on their own.
    white = expansions("What did the White House say?")
    assert "Washington" in white and "United States" in white
    assert expansions("Who made the F-35?") == []
    assert expansions("Ankara's defence", names=False) == ["defense"]
    assert expansions("Ankara's defence", spellings=False) == ["Turkey", "Turkish"]


def test_unknown_name_gate_accepts_a_name_known_by_another_name():
    lexical = LexicalIndex.build(["Russian President Vladimir Putin met Turkish officials in Moscow.",
                                  "The systems were delivered in July."])
    assert unknown_names("Which Kremlin leader met the Turkish officials?", lexical) == []
    assert unknown_names("Which Oshkosh vehicles did the Kremlin order?", lexical) == ["Oshkosh"]
    # An alias only helps when the articles know it: Ankara -> Turkey/Turkish is known here ...
    assert unknown_names("What did Ankara say?", lexical) == []
    # ... Tokyo -> Japan/Japanese is not.
    assert unknown_names("What did Tokyo say?", lexical) == ["Tokyo"]


def test_lexical_search_finds_the_other_spelling(fake_embedder, tmp_path):
    import rag

    docs = tmp_path / "docs"
    docs.mkdir()
    bodies = {"a": "The prime minister of Japan opened a new bridge in the north of the country on Monday.",
              "b": "Defense Minister Hulusi Akar said the batteries would be stationed in October.",
              "c": "Turkey wants a share of the production of the missile systems, officials said."}
    for name, body in bodies.items():
        (docs / f"{name}.txt").write_text(f"A news article about {name}\n{body}\n", encoding="utf-8")
    rag.build_index(docs, tmp_path / "idx", embedder=fake_embedder, analyze=False)
    qa = rag.load(tmp_path / "idx", embedder=fake_embedder)
    doc_of = lambda rows: [qa.retriever.index.chunks[r].doc_id for r in rows]  # noqa: E731
    # "defence minister" alone matches "minister" in a and b alike; "defense" decides for b.
    assert doc_of(r for r, _ in qa.retriever.lexical("defence minister", 3))[0] == "b"
    # Aliases stay out of the query (they cost hybrid retrieval a question on the gold dev split).
    assert doc_of(r for r, _ in qa.retriever.lexical("What did Ankara say?", 3)) == []
