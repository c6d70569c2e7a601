"""Zero-shot labels with prompt ensembles, on held-out shapes-world scenes and the real test model."""

from __future__ import annotations

import numpy as np
import pytest

from clifs.engine.vision.labels import embed_labels, label_embedding, probabilities
from clifs.engine.vision.vocabulary import VocabularyError, default_labels, load_vocabulary, parse_labels
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes

NAMES = load_vocabulary("shapes")
# Floors a little under what the shipped test model measures on these scenes (colour 1.000,
# colour+shape 0.965 with the 80-template ensemble, 0.985 with one template).
COLOUR_FLOOR = 0.95
NAME_FLOOR = 0.9
ENSEMBLE_TOLERANCE = 0.04


@pytest.fixture(scope="module")
def singles(test_encoder):
    """200 held-out single-object scenes, their stored-style embeddings and true names."""
    scenes = list(iter_scenes(HELD_OUT_SEED_BASE + 4000, 200, size=64, n_objects=1))
    return test_encoder.encode_pil([s.image for s in scenes]), [s.objects[0].name for s in scenes]


def accuracy(encoder, embeddings, truth, template_set):
    probs = probabilities(embeddings, embed_labels(encoder, NAMES, template_set), encoder.logit_scale)
    pred = [NAMES[i] for i in probs.argmax(1)]
    name = np.mean([p == t for p, t in zip(pred, truth, strict=True)])
    colour = np.mean([p.split()[0] == t.split()[0] for p, t in zip(pred, truth, strict=True)])
    return name, colour


def test_probabilities_sum_to_one_and_the_right_label_wins(test_encoder, singles):
    embeddings, truth = singles
    for emb in embeddings[:20]:
        scores = label_embedding(test_encoder, emb, NAMES)
        assert sum(s.probability for s in scores) == pytest.approx(1.0, abs=1e-5)
        assert [s.probability for s in scores] == sorted((s.probability for s in scores), reverse=True)
    name, colour = accuracy(test_encoder, embeddings, truth, "ensemble")
    assert colour >= COLOUR_FLOOR, f"colour accuracy {colour:.3f}"
    assert name >= NAME_FLOOR, f"colour+shape accuracy {name:.3f} (chance is {1 / len(NAMES):.3f})"


def test_ensemble_is_not_worse_than_one_template(test_encoder, singles):
    embeddings, truth = singles
    single, _ = accuracy(test_encoder, embeddings, truth, "single")
    ensemble, _ = accuracy(test_encoder, embeddings, truth, "ensemble")
    assert ensemble >= single - ENSEMBLE_TOLERANCE, f"ensemble {ensemble:.3f} vs single template {single:.3f}"


def test_top_k_cuts_the_list_but_not_the_distribution(test_encoder, singles):
    emb = singles[0][0]
    everything = label_embedding(test_encoder, emb, NAMES)
    top = label_embedding(test_encoder, emb, NAMES, top=3)
    assert [s.label for s in top] == [s.label for s in everything[:3]]
    assert [s.probability for s in top] == pytest.approx([s.probability for s in everything[:3]])


def test_user_vocabulary_file(tmp_path, test_encoder):
    path = tmp_path / "mine.txt"
    path.write_text("# my shapes\nred circle\n\n  blue square  \nred circle\n# done\n", encoding="utf-8")
    assert load_vocabulary(path) == ["red circle", "blue square"]
    assert parse_labels(" dog, person,,dog ") == ["dog", "person"]
    (tmp_path / "empty.txt").write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="no labels"):
        load_vocabulary(tmp_path / "empty.txt")
    with pytest.raises(VocabularyError, match="Built-in vocabularies"):
        load_vocabulary(tmp_path / "missing.txt")
    assert default_labels(test_encoder) == NAMES  # the test model only knows the shapes world


def test_shipped_shapes_vocabulary_matches_the_world():
    from devkit.shapes import all_object_names

    assert NAMES == all_object_names()


def test_label_embeddings_persist_on_disk_and_survive_a_damaged_cache(tmp_path, test_encoder):
    # Labels no other test uses: the memory cache is per encoder, and the encoder is shared by the session.
    labels = ["red circle kept on disk", "green cross kept on disk"]
    first = embed_labels(test_encoder, labels, "compact", cache_dir=tmp_path)
    files = list((tmp_path / "labels").glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0]) as data:
        stored = dict(zip(data["labels"], data["embeddings"], strict=True))
    assert set(labels) <= set(stored)  # plus whatever else this encoder labelled earlier in the process
    assert np.allclose(np.stack([stored[label] for label in labels]), first, atol=1e-6)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)

    files[0].write_bytes(b"not a zip file")
    again = embed_labels(test_encoder, ["blue square kept on disk"], "compact", cache_dir=tmp_path)  # new: writes
    assert again.shape == (1, test_encoder.dim)
    with np.load(files[0]) as data:
        assert "blue square kept on disk" in set(data["labels"])
