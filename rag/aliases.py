"""Other names for the same thing: news metonyms and British/American spellings.

News writes "Ankara" for the Turkish government, "the Kremlin" for Russia's and "Washington" for
the United States'; questions often use one name where the article uses the other ("What does
Moscow still need from Ankara?" over "the Turkish side's final decision"). And a British
"defence" should find an American "defense". ``expansions(question)`` gives the extra words a
question implies. The unknown-name gate (``rag.answer.unknown_names``) takes a name as known
when one of its aliases is; lexical search adds the other spellings only (measured on the gold
dev split, answerable questions, a passage holding the answer in the top 5: BM25 0.807 -> 0.825
with spellings, hybrid unchanged at 0.860; adding the aliases too cost hybrid one question,
0.842, so they stay out of the query). The lists are general
knowledge (capitals of countries and the seats of power news names), not facts of any corpus.
"""
from __future__ import annotations

import re
from functools import lru_cache

# Seat of government (or the building news names it by) -> the country, its demonym.
_CAPITALS = """
Abuja: Nigeria, Nigerian | Accra: Ghana, Ghanaian | Addis Ababa: Ethiopia, Ethiopian |
Algiers: Algeria, Algerian | Amman: Jordan, Jordanian | Ankara: Turkey, Turkish |
Athens: Greece, Greek | Baghdad: Iraq, Iraqi | Baku: Azerbaijan, Azerbaijani |
Bangkok: Thailand, Thai | Beijing: China, Chinese | Beirut: Lebanon, Lebanese |
Belgrade: Serbia, Serbian | Berlin: Germany, German | Bern: Switzerland, Swiss |
Bogota: Colombia, Colombian | Brasilia: Brazil, Brazilian | Bratislava: Slovakia, Slovak |
Brussels: Belgium, Belgian | Bucharest: Romania, Romanian | Budapest: Hungary, Hungarian |
Buenos Aires: Argentina, Argentine | Cairo: Egypt, Egyptian | Canberra: Australia, Australian |
Caracas: Venezuela, Venezuelan | Copenhagen: Denmark, Danish | Damascus: Syria, Syrian |
Delhi: India, Indian | New Delhi: India, Indian | Dhaka: Bangladesh, Bangladeshi |
Doha: Qatar, Qatari | Dublin: Ireland, Irish | Hanoi: Vietnam, Vietnamese |
Havana: Cuba, Cuban | Helsinki: Finland, Finnish | Islamabad: Pakistan, Pakistani |
Jakarta: Indonesia, Indonesian | Kabul: Afghanistan, Afghan | Kyiv: Ukraine, Ukrainian |
Kiev: Ukraine, Ukrainian | Kuala Lumpur: Malaysia, Malaysian | Lisbon: Portugal, Portuguese |
London: Britain, British, UK | Madrid: Spain, Spanish | Manila: Philippines, Philippine |
Mexico City: Mexico, Mexican | Minsk: Belarus, Belarusian | Moscow: Russia, Russian |
Nairobi: Kenya, Kenyan | Oslo: Norway, Norwegian | Ottawa: Canada, Canadian |
Paris: France, French | Prague: Czech Republic, Czech | Pyongyang: North Korea, North Korean |
Riyadh: Saudi Arabia, Saudi | Rome: Italy, Italian | Santiago: Chile, Chilean |
Seoul: South Korea, South Korean | Sofia: Bulgaria, Bulgarian | Stockholm: Sweden, Swedish |
Taipei: Taiwan, Taiwanese | Tallinn: Estonia, Estonian | Tbilisi: Georgia, Georgian |
Tehran: Iran, Iranian | Tokyo: Japan, Japanese | Tripoli: Libya, Libyan | Tunis: Tunisia, Tunisian |
Vienna: Austria, Austrian | Vilnius: Lithuania, Lithuanian | Riga: Latvia, Latvian |
Warsaw: Poland, Polish | Washington: United States, US, American | Wellington: New Zealand |
Yerevan: Armenia, Armenian | Abu Dhabi: United Arab Emirates, UAE, Emirati |
Kremlin: Russia, Russian, Moscow | White House: United States, US, American, Washington |
Pentagon: United States, US, American, Washington | Downing Street: Britain, British, UK, London |
Elysee: France, French, Paris | Beltway: United States, US, American, Washington
"""

# British spelling -> American (both directions are added to a query).
_SPELLINGS = """
defence:defense aeroplane:airplane armour:armor armoured:armored behaviour:behavior
catalogue:catalog centre:center colour:color counselling:counseling favour:favor
favourable:favorable honour:honor jewellery:jewelry labour:labor licence:license
manoeuvre:maneuver metre:meter neighbour:neighbor offence:offense organisation:organization
organise:organize organised:organized programme:program realise:realize recognise:recognize
criticise:criticize characterise:characterize apologise:apologize authorise:authorize
modernise:modernize modernisation:modernization prioritise:prioritize privatisation:privatization
stabilise:stabilize emphasise:emphasize analyse:analyze kilometre:kilometer litre:liter
theatre:theater travelled:traveled travelling:traveling tonne:ton grey:gray
"""


@lru_cache(maxsize=1)
def alias_table() -> dict[str, tuple[str, ...]]:
    """Lower-cased name -> the other names it stands for."""
    table: dict[str, tuple[str, ...]] = {}
    for entry in _CAPITALS.split("|"):
        if ":" not in entry:
            continue
        name, others = entry.split(":", 1)
        table[name.strip().lower()] = tuple(o.strip() for o in others.split(",") if o.strip())
    return table


@lru_cache(maxsize=1)
def spelling_table() -> dict[str, str]:
    """Lower-cased word -> its other spelling, both ways."""
    out: dict[str, str] = {}
    for pair in _SPELLINGS.split():
        brit, amer = pair.split(":")
        out[brit], out[amer] = amer, brit
    return out


_WORDS = re.compile(r"[A-Za-z][A-Za-z\-]*")


def aliases_of(name: str) -> tuple[str, ...]:
    """The other names of ``name`` ("Ankara" -> ("Turkey", "Turkish")); () when none is known."""
    return alias_table().get(name.strip().lower(), ())


def alias_matches(words: list[str]) -> list[tuple[int, int, tuple[str, ...]]]:
    """(start, end, aliases) for each run of ``words`` that is a known name, two-word names first."""
    lower = [w.lower() for w in words]
    return [(i, i + n, found) for n in (2, 1) for i in range(len(lower) - n + 1)
            if (found := alias_table().get(" ".join(lower[i:i + n]), ()))]


def expansions(text: str, *, names: bool = True, spellings: bool = True) -> list[str]:
    """Words ``text`` implies but does not say: aliases of the names in it, other spellings.

    Multi-word names ("White House", "New Delhi") are matched whole. Words already in ``text``
    are not repeated.
    """
    words = [m.group() for m in _WORDS.finditer(text)]
    lower = [w.lower() for w in words]
    present = set(lower)
    out: list[str] = []

    def add(items) -> None:
        for item in items:
            if item.lower() not in present and item not in out:
                out.append(item)

    if names:
        for _, _, found in alias_matches(words):
            add(found)
    if spellings:
        spell = spelling_table()
        add(spell[w] for w in lower if w in spell)
    return out
