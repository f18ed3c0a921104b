"""Fusion, reranking, threshold, MMR and the explanation each hit carries."""

from __future__ import annotations

import numpy as np
import pytest

from semsearch import InvalidInputError
from semsearch.retrieval.fusion import minmax, rrf, weighted
from semsearch.types import Candidate


def _c(*pairs):
    return [Candidate(d, i, s) for i, (d, s) in enumerate(pairs)]


def test_rrf_and_weighted_fusion_formulas():
    dense = _c(("a", 0.9), ("b", 0.5), ("c", 0.1))
    lexical = _c(("c", 12.0), ("a", 3.0))
    fused = rrf(dense, lexical, k=60)
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62) and fused["b"] == pytest.approx(1 / 62)
    assert minmax(lexical) == {"c": 1.0, "a": 0.0}
    w = weighted(dense, lexical, alpha=0.7)
    assert w["a"] == pytest.approx(0.7) and w["c"] == pytest.approx(0.3) and w["b"] == pytest.approx(0.7 * 0.5)


def test_vocabulary_coverage_separates_languages_the_model_reads(minilm_path):
    from transformers import AutoTokenizer

    from semsearch.retrieval.fusion import dense_weight, vocabulary_coverage

    tok = AutoTokenizer.from_pretrained(minilm_path)
    assert vocabulary_coverage("how does photosynthesis turn sunlight into sugar", tok) > 0.9
    for foreign in ("пирожки с капустой", "熊猫吃什么", "ต้มยำกุ้ง รสชาติ", "ताजमहल कहाँ स्थित है", "ქართული ენა"):
        assert vocabulary_coverage(foreign, tok) < 0.2, foreign
    assert dense_weight("what is the capital of france", tok) == pytest.approx(0.7)
    assert dense_weight("пирожки с капустой", tok) == 0.0
    assert dense_weight("capital of france 2024", tok) < 0.7  # an identifier leans to BM25
    assert dense_weight("anything", tok, lexical_found=False) == 1.0
    assert dense_weight("anything", tok, dense_found=False) == 0.0


def test_adaptive_weight_follows_each_retrievers_evidence(minilm_path):
    """Behaviour, not constants: unreadable script -> BM25 only; BM25 matching nothing of the
    query -> dense only; BM25 matching less of the query -> less lexical weight."""
    from transformers import AutoTokenizer

    from semsearch.retrieval.fusion import dense_weight, matched_share

    tok = AutoTokenizer.from_pretrained(minilm_path)
    english = "how do I get back into my account"
    assert dense_weight("ქართული ენა", tok, lexical_match=1.0) == pytest.approx(0.0, abs=1e-9)
    assert dense_weight(english, tok, lexical_match=0.0) == pytest.approx(1.0)
    weights = [dense_weight(english, tok, lexical_match=m) for m in (1.0, 0.6, 0.3, 0.1)]
    assert weights == sorted(weights) and weights[0] < weights[-1]
    # A poor BM25 match does not hand the query to a model that cannot read it.
    assert dense_weight("ქართული ენა", tok, lexical_match=0.0) == pytest.approx(0.0, abs=1e-9)
    # Matching a rare word counts for more than matching a common one.
    freq, total = {"the": 90, "of": 95, "mercury": 2, "planet": 5}, 100
    query = ["the", "planet", "of", "mercury"]
    assert matched_share(query, {"mercury", "planet"}, freq, total) > 0.8
    assert matched_share(query, {"the", "of"}, freq, total) < 0.1
    assert matched_share(query, set(), freq, total) == 0.0 and matched_share([], {"x"}, freq, total) == 0.0


def test_lexical_term_statistics_read_fts5(tmp_path, minilm_path):
    from semsearch import Collection
    from semsearch.lexical import tokenize

    col = Collection(tmp_path / "c", model=minilm_path, progress=False)
    col.add(["the red planet mercury", "the blue sea", "the green hill"], ids=["a", "b", "c"])
    hit = col.search("mercury", k=1, mode="lexical")[0]
    from semsearch.backends.local.fts import term_statistics

    chunk = term_statistics(col.engine.store, tokenize("the mercury"), 0)
    assert hit.id == "a"
    freq, total, _ = chunk
    assert freq == {"the": 3, "mercury": 1} and total == 3
    col.close()


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory, minilm_path):
    """A tiny randomly initialised BERT cross-encoder (1 label) with MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-ce")
    tok = AutoTokenizer.from_pretrained(minilm_path)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture()
def vec_col(tmp_path, tiny_model_dir):
    from semsearch import Collection

    col = Collection(tmp_path / "col", model=str(tiny_model_dir))
    base = np.eye(4, col.dimension, dtype=np.float32)
    vectors = np.stack([base[0], base[0] + 0.05 * base[1], 0.6 * base[0] + base[2], base[3]])
    col.add(["apple pie recipe", "apple pie recipe again", "pear tart baking", "car engine repair"],
            ids=["a", "a2", "p", "car"], embeddings=vectors)
    yield col, base
    col.close()


def test_rerank_orders_by_the_cross_encoder_and_reports_both_scores(vec_col, tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    col, _ = vec_col
    hits = col.search("apple pie", k=2, mode="lexical", rerank=tiny_cross_encoder, rerank_top=3)
    reranked = col.search("apple pie", k=3, mode="lexical")
    expected = CrossEncoder(tiny_cross_encoder).predict([("apple pie", h.text) for h in reranked])
    assert [h.scores["rerank"] for h in hits] == pytest.approx(sorted(expected.tolist(), reverse=True)[:2], abs=1e-5)
    assert all(h.score == h.scores["rerank"] and "lexical" in h.scores and "first_stage" in h.scores for h in hits)
    with pytest.raises(InvalidInputError, match="cannot load the cross-encoder"):
        col.search("apple", rerank=str(col.path / "no-such-model"))


def test_only_reranked_hits_compete_with_reranked_hits(vec_col, tiny_cross_encoder):
    """rerank_top below k, with MMR and a threshold (issue 18, defect 4): every hit returned
    was scored by the cross-encoder, and MMR and the threshold saw cross-encoder scores only."""
    col, _ = vec_col
    for options in ({"rerank_top": 1}, {"rerank_top": 2, "mmr": 0.7}, {"rerank_top": 1, "threshold": -1e9, "mmr": 0.5}):
        hits = col.search("apple pie", k=4, mode="lexical", rerank=tiny_cross_encoder, **options)
        assert hits, options
        assert all("rerank" in h.scores and h.score in (h.scores["rerank"], h.scores.get("mmr")) for h in hits), options
    # k above rerank_top: the cross-encoder reads k candidates, so k hits come back, all reranked
    hits = col.search("apple pie", k=3, mode="dense", rerank=tiny_cross_encoder, rerank_top=1)
    assert len(hits) == 3 and all("rerank" in h.scores for h in hits)


def test_threshold_drops_weak_hits(vec_col):
    col, base = vec_col
    hits = col.search(base[0], k=4, threshold=0.5)
    assert {h.id for h in hits} == {"a", "a2", "p"} and all(h.score >= 0.5 for h in hits)
    assert col.search(base[0], k=4, threshold=1.5) == []


def test_mmr_skips_near_duplicates(vec_col):
    col, base = vec_col
    query = base[0] + 0.3 * base[2]
    assert [h.id for h in col.search(query, k=3)] == ["a", "a2", "p"]
    diverse = col.search(query, k=2, mmr=0.5)
    assert [h.id for h in diverse] == ["a", "p"] and "mmr" in diverse[1].scores


@pytest.mark.parametrize(
    ("options", "message"),
    [({"mode": "fuzzy"}, "mode must be one of .*'fuzzy'"), ({"fusion": "max"}, "fusion must be one of .*'max'"),
     ({"alpha": 2}, "alpha"), ({"mmr": -1}, "mmr"), ({"candidates": 0}, "candidates"),
     ({"where": {"a": {"$x": 1}}}, "where.a.$x")],
)
def test_bad_options_are_clear_errors(vec_col, options, message):
    col, _ = vec_col
    with pytest.raises(InvalidInputError, match=message.replace("$", r"\$")):
        col.search("apple", **options)


def test_embedding_queries_are_dense_only(vec_col):
    col, base = vec_col
    with pytest.raises(InvalidInputError, match="needs query text"):
        col.search(base[0], mode="hybrid")


# -- hybrid with the real model ------------------------------------------------------------

MIXED = {
    "hotel": "Budget-friendly lodging by the coast, a short walk from the sand.",
    "beach-distractor": "The beach near the hotel was closed, and nothing there was cheap.",
    "bank": "The central bank raised interest rates by a quarter point.",
    "cake": "Preheat the oven and whisk the eggs with sugar for the sponge cake.",
    "bolt": "Part XK-4471: stainless steel hex bolt, 8 mm, sold in packs of 50.",
    "screw": "Part XK-4417: stainless steel wood screw, 8 mm, sold in packs of 50.",
    "tomyum": "ต้มยำกุ้งเป็นอาหารไทยที่มีรสเปรี้ยวและเผ็ด",
    "songkran": "ช่วงสงกรานต์คนไทยจะเล่นสาดน้ำกันทั่วประเทศ",
    "market": "ตลาดน้ำดำเนินสะดวกเปิดทุกวันตั้งแต่เช้าตรู่",
    "moscow": "Метро в Москве работает с шести утра до часа ночи.",
    "pies": "Бабушка испекла пирожки с капустой и яйцом к праздничному ужину.",
}


@pytest.fixture(scope="module")
def mixed_col(tmp_path_factory, minilm_path):
    from semsearch import Collection

    col = Collection(tmp_path_factory.mktemp("mixed") / "col")
    col.add(list(MIXED.values()), ids=list(MIXED))
    yield col
    col.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("affordable accommodation by the seaside", "hotel"),  # no shared words: meaning decides
        ("XK-4471", "bolt"),  # an identifier: the words decide
        ("สงกรานต์ สาดน้ำ", "songkran"),  # a script the model does not know: [UNK] for dense
        ("пирожки с капустой", "pies"),  # Cyrillic shattered into letters by WordPiece
    ],
)
def test_default_hybrid_follows_the_retriever_that_understands_the_query(mixed_col, query, expected):
    hit = mixed_col.search(query, k=3)[0]
    assert hit.id == expected
    assert "hybrid" in hit.scores and "dense_weight" in hit.scores
    # the calibrated relevance, not a per-query min-max fused score that is 1.0 for every top hit;
    # "hybrid" is the same evidence before clipping to [0, 1]
    assert hit.score == hit.scores["relevance"] and 0.5 <= hit.score <= 1.0
    assert hit.scores["hybrid"] == pytest.approx(hit.score) or (hit.score == 1.0 and hit.scores["hybrid"] > 1.0)


def test_hits_explain_which_stages_found_them(mixed_col):
    hits = mixed_col.search("stainless steel bolt XK-4471", k=5)
    top = hits[0]
    assert top.id == "bolt"
    assert {"dense", "dense_rank", "lexical", "lexical_rank", "hybrid"} <= set(top.scores)
    dense_only = [h for h in mixed_col.search("stainless steel bolt XK-4471", k=11) if "lexical" not in h.scores]
    assert dense_only and all("dense_rank" in h.scores for h in dense_only)


AIRLINES = {
    "british-airways": "British Airways is the flag carrier airline of the United Kingdom, flying from Heathrow.",
    "blue-sky": "Blue Sky was a small charter airline that flew holiday makers to the Mediterranean.",
    "air-cargo": "An air cargo company moves freight in the holds of passenger jets and dedicated freighters.",
    "pilot": "Pilots train for years on simulators before they fly a passenger jet for an airline.",
    "airport": "The airport opened a new terminal with more gates for budget carriers.",
    "rail": "High-speed rail competes with short flights between large cities.",
    "bakery": "The bakery sells sourdough bread and croissants every morning.",
    "harbour": "Container ships unload at the harbour cranes before dawn.",
}


@pytest.fixture(scope="module")
def airline_col(tmp_path_factory, minilm_path):
    from semsearch import Collection

    col = Collection(tmp_path_factory.mktemp("airlines") / "col")
    col.add(list(AIRLINES.values()), ids=list(AIRLINES),
            metadatas=[{"kind": "carrier" if i in ("british-airways", "blue-sky") else "other"} for i in AIRLINES])
    yield col
    col.close()


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("where", [{"where_document": {"$contains": "airline"}}, {"where": {"kind": "carrier"}},
                                   {"where": {"kind": "other"}}])  # the last leaves out BM25's best hits
def test_a_hit_scores_and_ranks_the_same_with_a_filter_it_passes(airline_col, mode, where):
    """Issue 27, item 8: with a filter both pass, two airlines' scores became equal and their order
    swapped; a score must depend on the query and the document, not on which others a filter removed."""
    alone = {h.id: h for h in airline_col.search("airline", k=len(AIRLINES), mode=mode)}
    filtered = airline_col.search("airline", k=len(AIRLINES), mode=mode, **where)
    assert filtered
    for hit in filtered:
        assert hit.score == pytest.approx(alone[hit.id].score, abs=1e-9), hit.id
    order = [h.id for h in filtered]
    assert order == [i for i in alone if i in set(order)]
    # so a threshold keeps the same documents with and without the filter
    line = filtered[-1].score
    assert {h.id for h in filtered if h.score >= line} <= {i for i, h in alone.items() if h.score >= line}
