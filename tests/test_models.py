"""Model loading, the trimmed text tower, settings, and the offline fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clifs.engine.config import ConfigError, Settings
from clifs.engine.models.base import ModelUnavailable
from clifs.engine.models.registry import load_model


def test_trimmed_text_tower_matches_the_full_context(test_encoder):
    texts = ["a red circle", "a photo of a blue square and a green triangle on a striped background", "x"]
    tokens = test_encoder.tokenizer(texts)
    with torch.inference_mode():
        full = torch.nn.functional.normalize(test_encoder.model.encode_text(tokens), dim=-1).numpy()
    trimmed = test_encoder.encode_texts(texts)
    np.testing.assert_allclose(trimmed, full, atol=1e-5)
    assert trimmed.shape == (3, test_encoder.dim)


def test_image_embeddings_are_unit_vectors_and_counted(test_encoder):
    from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes

    before = test_encoder.images_encoded
    images = [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 60, 4, 64)]
    out = test_encoder.encode_pil(images)
    assert out.shape == (4, test_encoder.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert test_encoder.images_encoded == before + 4


def test_model_id_names_architecture_and_weights_checksum(test_encoder):
    assert test_encoder.model_id.startswith("openclip:shapes-vit-tiny:")
    assert len(test_encoder.model_id.rsplit(":", 1)[-1]) == 12


def test_explicit_model_never_falls_back(monkeypatch):
    """The hub switched offline (its own switch, read at import, so set on the module)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailable, match="not in the local cache"):
        load_model("ViT-B-32:laion2b_s34b_b79k")


def test_settings_from_toml_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIFS_HOME", str(tmp_path))
    monkeypatch.delenv("CLIFS_MODEL", raising=False)
    (tmp_path / "config.toml").write_text('model = "shapes-vit-tiny"\nbatch_size = 8\nexcludes = ["*.tmp"]\n')
    settings = Settings.load()
    assert (settings.model, settings.batch_size, settings.excludes) == ("shapes-vit-tiny", 8, ["*.tmp"])
    assert settings.catalog_path == tmp_path / "catalog.sqlite3"
    monkeypatch.setenv("CLIFS_MODEL", "starter")
    assert Settings.load().model == "starter"
    (tmp_path / "config.toml").write_text("colour = 3\n")
    with pytest.raises(ConfigError, match="Unknown setting 'colour'"):
        Settings.load()


def test_openai_weights_from_the_hub_cache_run_with_the_quickgelu_they_were_trained_with(tmp_path):
    """`RN50:openai` must build QuickGELU (open_clip's plain `RN50` config does not), and its vectors
    get a model id of their own: ones made with the wrong activation are another space."""
    import json
    import subprocess
    import sys

    import open_clip
    from safetensors.torch import save_file

    from tests.conftest import clifs_env

    # The hub cache as huggingface_hub lays it out, holding random weights in the real layout.
    repo = open_clip.get_pretrained_cfg("RN50", "openai")["hf_hub"].strip("/")
    snapshot = tmp_path / "hf" / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    model = open_clip.create_model("RN50", force_quick_gelu=True)
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(snapshot / "open_clip_pytorch_model.safetensors"))

    load = (
        "import json; from clifs.engine.models import openclip; e = openclip.load('RN50:openai', device='cpu'); "
        "print(json.dumps([e.model_id, sorted({type(m).__name__ for m in e.model.transformer.modules()}), "
        "e.encode_texts(['a photo of a dog'])[0].tolist()]))"
    )
    env = clifs_env(tmp_path / "home", HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", load], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    model_id, modules, text = json.loads(done.stdout)
    assert "QuickGELU" in modules and "GELU" not in modules
    assert model_id.startswith("openclip:RN50:quickgelu:openai:")
    with torch.no_grad():
        expected = model.encode_text(open_clip.get_tokenizer("RN50")(["a photo of a dog"]), normalize=True)[0]
    assert np.allclose(text, expected.numpy(), atol=1e-5)
