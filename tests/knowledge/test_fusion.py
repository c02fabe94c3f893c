"""Fusing the lexical and the meaning retriever, and the confidence rule (pure functions)."""

from __future__ import annotations

import dataclasses

from backend.knowledge import fusion
from backend.knowledge.fusion import Evidence, confident, reciprocal_rank_fusion


def test_an_item_both_retrievers_rank_beats_one_only_one_ranks() -> None:
    fused = reciprocal_rank_fusion([(["a", "b", "c"], 1.0), (["c", "d"], 1.0)], k=1)
    assert [item for item, _ in fused][:2] == ["c", "a"]


def test_the_meaning_weight_keeps_the_lexical_first_place() -> None:
    """At the tuned weight the meaning retriever reorders neighbours only: its first service, third
    for the words, does not push the lexical first place down."""
    fused = reciprocal_rank_fusion(
        [(["a", "b", "c", "d"], fusion.LEXICAL_WEIGHT), (["c"], fusion.MEANING_WEIGHT)], fusion.RRF_K
    )
    assert [item for item, _ in fused][:3] == ["a", "c", "b"]


def test_both_retrievers_agreeing_on_the_lexical_second_put_it_first() -> None:
    fused = reciprocal_rank_fusion(
        [(["a", "b", "c", "d"], fusion.LEXICAL_WEIGHT), (["b"], fusion.MEANING_WEIGHT)], fusion.RRF_K
    )
    assert [item for item, _ in fused][:2] == ["b", "a"]


def test_the_meaning_retrievers_best_joins_the_top_three() -> None:
    lexical = ["a", "b", "c", "d", "e", "f"]
    fused = reciprocal_rank_fusion([(lexical, fusion.LEXICAL_WEIGHT), (["f"], fusion.MEANING_WEIGHT)], fusion.RRF_K)
    assert "f" in [item for item, _ in fused][:3]


def test_ties_keep_the_order_of_the_first_ranking() -> None:
    fused = reciprocal_rank_fusion([(["x", "y"], 1.0), (["y", "x"], 1.0)], k=1)
    assert fused[0][1] == fused[1][1]
    assert [item for item, _ in fused] == ["x", "y"]


def test_an_empty_retriever_changes_nothing() -> None:
    assert [i for i, _ in reciprocal_rank_fusion([(["a", "b"], 1.0), ([], 0.3)])] == ["a", "b"]
    assert reciprocal_rank_fusion([([], 1.0), ([], 0.3)]) == []


def evidence(**fields: object) -> Evidence:
    base: dict[str, object] = {
        "lexical_confident": False,
        "lexical_rank": None,
        "meaning_rank": None,
        "similarity": 0.0,
        "best_similarity": 0.0,
    }
    base.update(fields)
    return Evidence(**base)  # type: ignore[arg-type]


def test_a_sure_lexical_hit_is_confident_when_the_question_is_about_services() -> None:
    assert confident(evidence(lexical_confident=True, lexical_rank=1, best_similarity=fusion.MEANING_NOTHING))


def test_a_sure_lexical_hit_is_declined_when_the_question_is_about_something_else() -> None:
    """ "Wann hat die Sparkasse auf?" finds the catalogue's Sparkasse entries by their word; a
    question no document resembles is not ours."""
    assert not confident(evidence(lexical_confident=True, lexical_rank=1, best_similarity=0.05))


def test_the_lexical_first_place_is_confident_on_a_question_like_ours() -> None:
    assert confident(evidence(lexical_rank=1, best_similarity=fusion.LEXICAL_FIRST))
    # Less like our documents, and more like a request no service answers (the next test).
    assert not confident(evidence(lexical_rank=1, best_similarity=fusion.LEXICAL_FIRST - 0.05, elsewhere=0.5))
    assert not confident(evidence(lexical_rank=2, best_similarity=fusion.LEXICAL_FIRST))


def test_the_meaning_first_place_needs_the_lexical_top_three_and_a_close_cosine() -> None:
    sure = fusion.MEANING_SURE
    assert confident(evidence(meaning_rank=1, lexical_rank=3, similarity=sure, best_similarity=sure))
    assert not confident(evidence(meaning_rank=1, lexical_rank=4, similarity=0.9, best_similarity=0.9))
    assert not confident(evidence(meaning_rank=1, similarity=0.9, best_similarity=0.9))  # the meaning alone
    assert not confident(evidence(meaning_rank=2, lexical_rank=2, similarity=0.9, best_similarity=0.9))


def test_nothing_close_and_no_lexical_judge_is_not_confident() -> None:
    assert not confident(evidence(lexical_rank=1, meaning_rank=1, similarity=0.2, best_similarity=0.2))


def test_the_meaning_retriever_alone_trusts_only_its_close_first_place() -> None:
    sure = fusion.MEANING_SURE
    assert fusion.meaning_confident(evidence(meaning_rank=1, similarity=sure))
    assert not fusion.meaning_confident(evidence(meaning_rank=1, similarity=sure - 0.05))
    assert not fusion.meaning_confident(evidence(meaning_rank=2, similarity=0.9))


def test_the_encoder_is_told_the_catalogue_words_of_a_colloquial_word() -> None:
    """The meaning retriever's search vector: "perso" alone means nothing to the encoder; the
    synonyms' catalogue word "personalausweis" does. Stop words stay out."""
    from backend.knowledge import analysis, meaning

    text = meaning.content_text(analysis.analyse("hab meinen perso verloren, was jetzt"))
    assert text.split()[:2] == ["perso", "personalausweis"]
    assert "verlust" in text.split()
    assert "meinen" not in text.split()
    assert meaning.content_text(analysis.analyse("Wie wird morgen das Wetter?")) == "wetter"


def test_a_question_much_closer_to_a_request_no_service_answers_is_declined() -> None:
    """ "Können Sie mir ein Taxi rufen?" finds the taxi licence by its word; it is a request for
    a taxi, which no service answers."""
    near, margin = fusion.ELSEWHERE_NEAR, fusion.ELSEWHERE_MARGIN
    sure = evidence(lexical_confident=True, lexical_rank=1, meaning_rank=1, similarity=0.5, best_similarity=0.4)
    assert confident(sure)
    assert not confident(dataclasses.replace(sure, elsewhere=max(near, 0.4 + margin)))
    # Close to such a request, but as close to a document: a question about a service.
    assert confident(dataclasses.replace(sure, elsewhere=0.4 + margin - 0.05))
    assert confident(dataclasses.replace(sure, best_similarity=0.2, elsewhere=near - 0.05))
    assert not fusion.meaning_confident(evidence(meaning_rank=1, similarity=0.9, best_similarity=0.3, elsewhere=0.95))


def test_the_encoder_tells_a_request_no_service_answers_from_a_service() -> None:
    from backend.knowledge import meaning

    said = meaning.embed(["Wie wird das Wetter am Wochenende?", "Ich möchte meinen Personalausweis verlängern"])
    assert meaning.elsewhere(said[0]) >= fusion.ELSEWHERE_NEAR
    assert meaning.elsewhere(said[1]) < fusion.ELSEWHERE_NEAR


def test_the_doctor_on_call_is_a_request_no_service_answers() -> None:
    """The pharmacy on call is a catalogue service (Apothekennotdienst); the doctor or dentist on
    call is not: "Welcher Zahnarzt hat heute Notdienst?" found it and was answered confidently."""
    from backend.knowledge import meaning

    said = meaning.embed(["Welcher Zahnarzt hat heute Notdienst?", "Ich brauche eine Approbation als Arzt"])
    assert meaning.elsewhere(said[0]) >= fusion.ELSEWHERE_NEAR
    assert meaning.elsewhere(said[1]) < fusion.ELSEWHERE_NEAR


def test_the_lexical_first_place_is_confident_when_the_question_is_no_closer_to_elsewhere() -> None:
    # "Ich hab am Bahnhof ein Portemonnaie gefunden": like our documents a little (0.30), and no
    # more like a request no service answers.
    ours = evidence(lexical_rank=1, best_similarity=fusion.LEXICAL_FIRST_OURS + 0.01, elsewhere=0.25)
    assert confident(ours)
    # "Wann fährt der nächste Bus nach Lippstadt?": as little like our documents, much more like
    # a bus timetable.
    assert not confident(dataclasses.replace(ours, elsewhere=ours.best_similarity + 0.2))
    assert not confident(dataclasses.replace(ours, best_similarity=fusion.LEXICAL_FIRST_OURS - 0.05))
    assert not confident(dataclasses.replace(ours, lexical_rank=2))


def test_the_meaning_retrievers_first_is_shown_when_the_words_are_unsure() -> None:
    """ "Bordstein absenken": the words find thirty weak matches of one common word; the encoder's
    best guess, which no word matched, comes third, and the first place stays the fusion's."""
    fused = ["a", "b", "c", "d", "m"]
    assert fusion.with_meaning_first(fused, ["m", "x"], lexical_sure=False)[:3] == ["a", "b", "m"]
    assert fusion.with_meaning_first(fused, ["m", "x"], lexical_sure=True) == fused


def test_the_meaning_retrievers_first_already_shown_keeps_its_place() -> None:
    assert fusion.with_meaning_first(["m", "a", "b", "c"], ["m"], lexical_sure=False) == ["m", "a", "b", "c"]
    assert fusion.with_meaning_first(["a", "b"], [], lexical_sure=False) == ["a", "b"]


def test_between_twins_of_one_service_the_words_decide() -> None:
    """Fusion put "Fundsachen Verwahrung" (lexical second, the encoder's first) before
    "Fundsachen" (lexical first); twins differ to the encoder by noise."""

    def twins(a: str, b: str) -> bool:
        return a[:8] == b[:8]

    lexical = ["99089017000000", "99089017089000", "99089017152000"]
    fused = ["99089017089000", "99089017000000", "99089017152000"]
    assert fusion.lexical_first_among_twins(fused, lexical, twins)[:2] == lexical[:2]
    # Another service first by both retrievers' agreement keeps its place.
    other = ["99108011000000", "99089017000000"]
    assert fusion.lexical_first_among_twins(other, lexical, twins) == other


def test_the_towns_article_comes_before_its_bare_catalogue_twin() -> None:
    """ "Sperrmüll" finds the catalogue's "Sperrmüll" (a name) and Geseke's article on its
    "Abholung" entry equally well: the one with the answer comes first."""
    articles = {"a:99001009004002"}
    found = {"99001009000000": 1.0, "a:99001009004002": 1.0, "99001009004000": 1.0, "a:99001009004001": 0.5}

    def twins(a: str, b: str) -> bool:
        return a[-14:][:8] == b[-14:][:8]

    def has_text(g: str) -> bool:
        return g in articles

    def as_well(a: str, b: str) -> bool:
        return found[a] >= found[b]

    order = ["99001009000000", "a:99001009004002", "99001009004000"]
    assert fusion.article_first_among_twins(order, has_text, twins, as_well) == [
        "a:99001009004002",
        "99001009000000",
        "99001009004000",
    ]
    # An article the words find less well, one beyond the first three, or of another service stays.
    articles = {"a:99001009004001"}
    weaker = ["99001009000000", "a:99001009004001"]
    assert fusion.article_first_among_twins(weaker, has_text, twins, as_well) == weaker
    found["a:99001009004001"] = 1.0
    assert (
        fusion.article_first_among_twins(["99001009000000", "x", "y", "a:99001009004001"], has_text, twins, as_well)[0]
        == "99001009000000"
    )
    assert (
        fusion.article_first_among_twins(["99108011000000", "a:99001009004001"], has_text, twins, as_well)[0]
        == "99108011000000"
    )
    # An article first already, or nothing: unchanged.
    assert (
        fusion.article_first_among_twins(["a:99001009004001", "99001009000000"], has_text, twins, as_well)[0]
        == "a:99001009004001"
    )
    assert fusion.article_first_among_twins([], has_text, twins, as_well) == []
