"""The exported text tower: a text search without torch that gives the same results as the whole model."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import open_clip
import pytest

from clifs.engine.models import model_cache
from clifs.engine.models.onnx_runtime import Tokenizer
from clifs.engine.models.openclip import OpenClipEncoder
from clifs.engine.models.openclip import load as load_openclip
from clifs.engine.models.openclip_onnx import clip_bpe_json
from clifs.engine.models.testmodel import WEIGHTS
from tests.conftest import TEST_MODEL, clifs_env, run_clifs, write_single_objects

AWKWARD_TEXTS = [
    "a dog on a beach at sunset",
    "",
    "   \t\n ",
    "Café crème brûlée!!",
    "naïve 東京タワー 🐶🐕\u200d🦺",
    "it's we're I'LL they'd",
    "&amp;lt;b&amp;gt; html &quot;quoted&quot;",
    "12345 678.9 $100 don't stop—believing…",
    "<start_of_text> inside <end_of_text> a text",
    "ﬁancé Ⅻ ½ ß straße İstanbul mojibake Ã©tÃ©",
    "word " * 100,
    "x" * 400,
]


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzAÀéü中文😀 .,!?'-0123456789"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(n)]


@pytest.mark.parametrize("context_length", [77, 32])
def test_tokenizer_gives_open_clips_ids(tmp_path, context_length):
    """The ``tokenizers`` BPE built from open_clip's vocabulary gives its ids, padded to the batch or the context."""
    reference = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
    path = tmp_path / "tokenizer.json"
    path.write_text(clip_bpe_json(reference))
    for pad in ("max", "longest"):
        ours = Tokenizer(path, {"clean": "lower", "context_length": context_length, "pad_id": 0, "pad": pad})
        for text in AWKWARD_TEXTS + random_texts(200):
            got = ours([text])["tokens"][0].tolist()
            want = reference([text])[0].tolist()
            assert got == (want if pad == "max" else want[: len(got)]) and not any(want[len(got) :]), text


def test_plain_ascii_skips_ftfy_and_is_cleaned_the_same():
    """The cleaning's fast path (no ftfy for printable ASCII without "&") gives open_clip's cleaning."""
    from open_clip.tokenizer import _clean_lower

    from clifs.engine.models.onnx_runtime import _PLAIN, _clean

    rng = random.Random(3)
    alphabet = "\t\n\r" + "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "&")
    words = ["a", "Photo", "<b>", "lt;", "quot;", "#39;", "x;", "\\u00e9", "it's", "--", "...", "\r\n"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += [" ".join(rng.choice(words) for _ in range(rng.randint(0, 8))) for _ in range(3000)]
    for text in texts:
        assert _PLAIN.fullmatch(text) and _clean(text, "lower") == _clean_lower(text), repr(text)
    for text in AWKWARD_TEXTS:
        assert _clean(text, "lower") == _clean_lower(text), repr(text)


def test_exported_text_tower_reproduces_the_test_model(tmp_path, test_encoder):
    assert model_cache.store(tmp_path, TEST_MODEL, test_encoder)
    saved = model_cache.load_text(tmp_path, TEST_MODEL, precision="fp32")
    assert saved is not None and saved.model_id == test_encoder.model_id and saved.dim == test_encoder.dim
    texts = ["a red circle", "two blue squares and a green triangle", *AWKWARD_TEXTS]
    np.testing.assert_allclose(saved.encode_texts(texts), test_encoder.encode_texts(texts), atol=1e-5)
    for text in texts:  # alone, at its own length
        np.testing.assert_allclose(saved.encode_texts([text]), test_encoder.encode_texts([text]), atol=1e-5)


def test_exported_text_tower_reproduces_quick_gelu_towers(tmp_path):
    """OpenAI's models use QuickGELU; a random tower of that kind must match too."""
    model = open_clip.create_model(TEST_MODEL, force_quick_gelu=True)
    encoder = OpenClipEncoder(model, open_clip.get_tokenizer(TEST_MODEL), "random:quick", "quick", "cpu", WEIGHTS)
    assert model_cache.store(tmp_path, "quick", encoder)
    texts = ["a photo of a cat", *random_texts(20, seed=1)]
    np.testing.assert_allclose(
        model_cache.load_text(tmp_path, "quick", precision="fp32").encode_texts(texts),
        encoder.encode_texts(texts),
        atol=1e-5,
    )


def test_a_tower_that_does_not_reproduce_its_model_is_not_saved(tmp_path, test_encoder):
    class WrongTokens(OpenClipEncoder):
        def onnx_parts(self):
            parts = super().onnx_parts()
            parts.tokenizer = dict(parts.tokenizer, clean="whitespace")  # no lower-casing: not what the model sees
            parts.image = None
            return parts

    wrong = WrongTokens(test_encoder.model, test_encoder.tokenizer, "wrong", "wrong", "cpu", WEIGHTS)
    assert not model_cache.store(tmp_path, "wrong", wrong)
    assert model_cache.load_text(tmp_path, "wrong") is None


def test_changed_weights_or_a_torn_record_are_not_used(tmp_path):
    weights = tmp_path / "weights.safetensors"
    shutil.copy(WEIGHTS, weights)
    spec = f"{TEST_MODEL}:{weights}"
    cache = tmp_path / "cache"
    assert model_cache.store(cache, spec, load_openclip(spec, device="cpu"))
    assert model_cache.load_text(cache, spec) is not None
    assert model_cache.load_text(cache, "another spec") is None

    os.utime(weights, ns=(0, weights.stat().st_mtime_ns + 10**9))  # the weights file changed
    assert model_cache.load_text(cache, spec) is None

    for part in ("textual.int8.onnx", "tokenizer.json"):
        assert model_cache.store(cache, spec, load_openclip(spec, device="cpu"))
        record = model_cache.record_dir(cache, spec) / part
        with record.open("r+b") as f:
            f.truncate(record.stat().st_size // 2)
        assert model_cache.load_text(cache, spec) is None, part


SEARCH_WITHOUT_TORCH = """
import json, sys
from clifs import Library
library = Library()
hits = library.search(text=sys.argv[1], top=5)
print(json.dumps({"torch": "torch" in sys.modules, "model": library.model.model_id,
                  "hits": [[h.path, h.score] for h in hits]}))
"""


def test_text_search_after_indexing_runs_without_torch_and_matches(clifs_home, tmp_path, test_encoder):
    clifs_home.mkdir(parents=True)
    (clifs_home / "config.toml").write_text('precision = "fp32"\n')  # fp32 reproduces torch to 1e-5
    photos = write_single_objects(tmp_path / "photos")
    assert run_clifs(clifs_home, "index", str(tmp_path / "photos")).returncode == 0

    out = subprocess.run(
        [sys.executable, "-c", SEARCH_WITHOUT_TORCH, "a red circle"],
        env=clifs_env(clifs_home),
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["torch"] is False
    assert result["model"] == test_encoder.model_id
    assert result["hits"][0][0] == str(photos["red circle"].resolve())

    from clifs import Library

    with_torch = Library(encoder=test_encoder).search(text="a red circle", top=5)
    assert [p for p, _ in result["hits"]] == [h.path for h in with_torch]
    np.testing.assert_allclose([s for _, s in result["hits"]], [h.score for h in with_torch], atol=1e-5)


def test_search_reports_missing_weights_even_with_a_saved_tower(clifs_home, tmp_path):
    weights = tmp_path / "weights.safetensors"
    shutil.copy(WEIGHTS, weights)
    write_single_objects(tmp_path / "photos")
    model = f"{TEST_MODEL}:{weights}"
    assert run_clifs(clifs_home, "index", str(tmp_path / "photos"), CLIFS_MODEL=model).returncode == 0
    weights.unlink()
    done = run_clifs(clifs_home, "search", "a red circle", CLIFS_MODEL=model)
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_a_record_half_written_by_a_killed_process_is_cleaned_up(tmp_path, test_encoder):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    folder = model_cache.record_dir(tmp_path, TEST_MODEL)
    folder.parent.mkdir(parents=True)
    leftover = folder.with_name(f"{folder.name}.{child.pid}-1.tmp")
    leftover.mkdir()
    (leftover / "visual.onnx").write_bytes(b"\0" * 1000)
    assert model_cache.store(tmp_path, TEST_MODEL, test_encoder)
    assert not leftover.exists()
    assert model_cache.load_text(tmp_path, TEST_MODEL) is not None


def test_a_disk_that_cannot_take_the_record_costs_nothing_but_speed(tmp_path, test_encoder):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    assert not model_cache.store(blocked, TEST_MODEL, test_encoder)
    assert model_cache.load_text(blocked, TEST_MODEL) is None


def test_a_prewarmed_text_tower_is_the_one_load_text_hands_over_once(shared_model_cache, test_encoder):
    model_cache.store(shared_model_cache, TEST_MODEL, test_encoder)  # a record (made here unless already saved)
    model_cache.prewarm_text(shared_model_cache, TEST_MODEL, "fp32")
    warm = model_cache.load_text(shared_model_cache, TEST_MODEL, "fp32")
    assert warm is not None and warm.text.session._session is not None  # built on the other thread
    fresh = model_cache.load_text(shared_model_cache, TEST_MODEL, "fp32")  # handed over once: a new one now
    assert fresh is not warm and fresh.text.session._session is None
    texts = ["a red circle", "a blue square"]
    assert np.allclose(warm.encode_texts(texts), fresh.encode_texts(texts), atol=1e-6)
    assert np.allclose(warm.encode_texts(texts), test_encoder.encode_texts(texts), atol=1e-4)
