"""The CPU runtime: the test model's towers exported to ONNX reproduce torch, int8 keeps its quality,
and a record that is stale, torn or another model's is rebuilt, never trusted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from clifs.engine.config import Settings
from clifs.engine.library import Library
from clifs.engine.models import model_cache
from clifs.engine.models.onnx_runtime import OnnxEncoder, use_onnx
from clifs.engine.models.openclip import OpenClipEncoder
from clifs.engine.models.openclip_spec import import_open_clip
from clifs.engine.models.testmodel import WEIGHTS
from devkit.evaluate import text_to_image_recall_at_1, zero_shot_accuracy
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes
from tests.conftest import TEST_MODEL, clifs_env, run_clifs, write_single_objects


@pytest.fixture(scope="module")
def exported(tmp_path_factory, test_encoder) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    assert model_cache.store(cache, TEST_MODEL, test_encoder)
    return cache


def evaluable(encoder: OnnxEncoder) -> OnnxEncoder:
    """devkit.evaluate renders its scenes at ``encoder.model.visual.image_size``: the test model's 64 px."""
    encoder.model = SimpleNamespace(visual=SimpleNamespace(image_size=(64, 64)))
    return encoder


def test_exported_towers_reproduce_torch_in_fp32(exported, test_encoder):
    onnx = model_cache.load(exported, TEST_MODEL, precision="fp32")
    assert onnx.precision == {"image": "fp32", "text": "fp32"} and onnx.model_id == test_encoder.model_id
    scenes = [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 5, 40, 96)]
    np.testing.assert_allclose(onnx.encode_pil(scenes), test_encoder.encode_pil(scenes), atol=1e-4)
    odd = [scenes[0].resize((131, 67)), scenes[1].resize((50, 170)), scenes[2].resize((64, 64))]
    np.testing.assert_allclose(onnx.encode_pil(odd), test_encoder.encode_pil(odd), atol=1e-4)
    np.testing.assert_allclose(
        np.stack([onnx.preprocess(im) for im in odd[:2]]),
        np.stack([test_encoder.preprocess(im).numpy() for im in odd[:2]]),
        atol=1e-6,
    )
    texts = ["a red circle", "two blue squares", "a photo of a green triangle " * 5]
    np.testing.assert_allclose(onnx.encode_texts(texts), test_encoder.encode_texts(texts), atol=1e-4)


def test_int8_keeps_the_test_models_quality(exported, test_encoder):
    """The rule that makes int8 the default: zero-shot accuracy and text->image R@1 within 1 point of fp32
    on the held-out scenes, and every probe's int8 embedding at cosine >= 0.99 to its fp32 one."""
    fp32 = evaluable(model_cache.load(exported, TEST_MODEL, precision="fp32"))
    int8 = evaluable(model_cache.load(exported, TEST_MODEL, precision="auto"))
    assert int8.precision == {"image": "int8", "text": "int8"}
    for measure in (zero_shot_accuracy, text_to_image_recall_at_1):
        assert abs(measure(int8) - measure(fp32)) <= 0.01, measure.__name__
    probes = model_cache.probe_images() + [s.image for s in iter_scenes(HELD_OUT_SEED_BASE + 6, 24, 64)]
    cosine = (int8.encode_pil(probes) * fp32.encode_pil(probes)).sum(-1)
    assert cosine.min() >= 0.99
    texts = model_cache.PROBE_TEXTS + ["a yellow star", "three purple circles and a square"]
    assert (int8.encode_texts(texts) * fp32.encode_texts(texts)).sum(-1).min() >= 0.99


def test_int8_quantizes_the_matmuls_and_leaves_the_patch_convolution_fp32(exported):
    """ONNX Runtime's ConvInteger ran a ViT's patch embedding on one thread (a quarter of the int8 tower's
    time, bench/int8_quality.py): the int8 image graph keeps that conv in fp32, its matmuls in int8."""
    import onnx

    (record,) = (exported / "models").iterdir()
    ops = {node.op_type for node in onnx.load(str(record / "visual.int8.onnx")).graph.node}
    assert "MatMulInteger" in ops and "Conv" in ops
    assert "ConvInteger" not in ops


def test_precision_setting_and_the_auto_rule(exported):
    meta = json.loads((model_cache.record_dir(exported, TEST_MODEL) / "meta.json").read_text())
    assert model_cache.choose_precision(meta, "image", "fp32") == "fp32"
    assert model_cache.choose_precision(meta, "image", "int8") == "int8"
    assert model_cache.choose_precision(meta, "image", "auto") == "int8"
    meta["towers"]["image"]["int8_min_cosine"] = 0.98  # a model whose int8 probes fell short stays fp32 on auto
    assert model_cache.choose_precision(meta, "image", "auto") == "fp32"
    assert model_cache.choose_precision(meta, "image", "int8") == "int8"  # unless asked for


def _settings(home: Path, **values) -> Settings:
    settings = Settings(home=home, model=values.pop("model", TEST_MODEL), runtime="onnx")
    for key, value in values.items():
        setattr(settings, key, value)
    home.mkdir(parents=True, exist_ok=True)
    return settings


def test_stale_torn_or_foreign_records_are_rebuilt_not_trusted(tmp_path):
    weights = tmp_path / "weights.safetensors"
    shutil.copy(WEIGHTS, weights)
    spec = f"{TEST_MODEL}:{weights}"
    home = tmp_path / "home"
    settings = _settings(home, model=spec)
    record = model_cache.record_dir(settings.cache_dir, spec)

    assert isinstance(
        Library(settings, load_model=False).encoder, OnnxEncoder
    )  # no record: loaded with torch, exported, then run on ONNX
    assert (record / "meta.json").is_file()

    def rebuilt() -> bool:
        library = Library(settings, load_model=False)
        encoder = library.encoder
        return (
            isinstance(encoder, OnnxEncoder)
            and library._torch is not None
            and model_cache.is_saved(settings.cache_dir, spec, encoder.model_id)
        )

    def trusted() -> bool:
        library = Library(settings, load_model=False)
        return isinstance(library.encoder, OnnxEncoder) and library._torch is None

    assert trusted()
    os.utime(weights, ns=(0, weights.stat().st_mtime_ns + 10**9))  # stale: the weights changed
    assert rebuilt() and trusted()

    graph = record / "visual.int8.onnx"  # torn: a graph cut short
    with graph.open("r+b") as f:
        f.truncate(graph.stat().st_size // 2)
    assert model_cache.load(settings.cache_dir, spec) is None
    assert rebuilt() and trusted()

    # foreign: another model's record where this spec's should be
    other = _settings(tmp_path / "other")
    assert isinstance(Library(other, load_model=False).encoder, OnnxEncoder)
    shutil.rmtree(record)
    shutil.copytree(model_cache.record_dir(other.cache_dir, TEST_MODEL), record)
    assert (
        model_cache.load(settings.cache_dir, spec) is None and model_cache.load_text(settings.cache_dir, spec) is None
    )
    assert rebuilt() and trusted()


def test_the_torch_runtime_is_a_setting(tmp_path):
    settings = _settings(tmp_path / "home")
    settings.runtime = "torch"
    assert isinstance(Library(settings, load_model=False).encoder, OpenClipEncoder)
    assert use_onnx("onnx", "cuda") and not use_onnx("torch", "cpu") and use_onnx("auto", "cpu")
    assert not use_onnx("auto", "cuda")


#: Index in this process, then say whether torch was imported and what the catalog says made the vectors.
INDEX_AND_REPORT = """
import json, sys
from clifs.cli.main import main
rc = main(["index", "--json", "--no-progress", *sys.argv[1:]])
from clifs import Library
library = Library()
print(json.dumps({"rc": rc, "torch": "torch" in sys.modules, "open_clip": "open_clip" in sys.modules,
                  "embedders": library.catalog.embedders(library.model.model_id)}), file=sys.stderr)
"""


def index_and_report(home: Path, folder: Path) -> tuple[dict, dict]:
    done = subprocess.run(
        [sys.executable, "-c", INDEX_AND_REPORT, str(folder)],
        env=clifs_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[0], json.loads(done.stderr.strip().splitlines()[-1])


def test_indexing_with_an_export_never_imports_torch_and_precision_changes_reembed_nothing(clifs_home, tmp_path):
    photos = tmp_path / "photos"
    write_single_objects(photos)
    assert run_clifs(clifs_home, "index", "--no-progress", str(photos)).returncode == 0  # exports the model

    write_single_objects(photos / "more", seed=HELD_OUT_SEED_BASE + 11)
    summary, report = index_and_report(clifs_home, photos)
    assert summary["indexed"] == 24 and summary["encoded_images"] == 24 and summary["unchanged"] == 24
    assert report["torch"] is False and report["open_clip"] is False
    assert report["embedders"] == ["onnxruntime int8"]

    (clifs_home / "config.toml").write_text('precision = "fp32"\n')  # one space: nothing is re-embedded
    (photos / "more" / "red_circle.png").unlink()
    write_single_objects(photos / "third", seed=HELD_OUT_SEED_BASE + 12)
    summary, report = index_and_report(clifs_home, photos)
    assert summary["indexed"] == 24 and summary["unchanged"] == 47 and summary["removed"] == 1
    assert report["torch"] is False and report["embedders"] == ["onnxruntime int8", "onnxruntime fp32"]
    done = run_clifs(clifs_home, "search", "a red circle", "--json", "--top", "3")
    assert done.returncode == 0 and json.loads(done.stdout)[0]["path"].endswith("red_circle.png")


def test_deleting_the_exported_files_costs_only_a_re_export(clifs_home, tmp_path, monkeypatch):
    monkeypatch.delenv("CLIFS_MODEL_CACHE")  # the home's own cache, the one a user has
    photos = tmp_path / "photos"
    write_single_objects(photos)
    assert run_clifs(clifs_home, "index", "--no-progress", str(photos)).returncode == 0
    shutil.rmtree(clifs_home / "cache" / "models")

    done = run_clifs(clifs_home, "index", "--json", "--no-progress", str(photos))
    assert done.returncode == 0
    summary = json.loads(done.stdout)[0]
    assert summary["unchanged"] == 24 and summary["encoded_images"] == 0  # the vectors are kept
    assert list((clifs_home / "cache" / "models").glob("*/meta.json"))  # and the towers exported again
    found = run_clifs(clifs_home, "search", "a blue square", "--json", "--top", "1")
    assert json.loads(found.stdout)[0]["path"].endswith("blue_square.png")


def test_missing_weights_after_export_are_still_a_readable_error(clifs_home, tmp_path):
    weights = tmp_path / "weights.safetensors"
    shutil.copy(WEIGHTS, weights)
    model = f"{TEST_MODEL}:{weights}"
    photos = tmp_path / "photos"
    write_single_objects(photos)
    assert run_clifs(clifs_home, "index", "--no-progress", str(photos), CLIFS_MODEL=model).returncode == 0
    weights.unlink()
    write_single_objects(photos / "more", seed=HELD_OUT_SEED_BASE + 11)
    done = run_clifs(clifs_home, "index", "--no-progress", str(photos), CLIFS_MODEL=model)
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_an_exported_encoder_loads_torch_only_for_dense_features(exported, test_encoder):
    calls = []

    def torch_encoder():
        calls.append(1)
        return test_encoder

    onnx = model_cache.load(exported, TEST_MODEL, torch_encoder=torch_encoder)
    onnx.encode_texts(["a red circle"])
    assert calls == [] and onnx.has_dense
    assert onnx.dense() is not None and calls == [1]


def _tiny_hf_clip(folder: Path) -> str:
    """An open_clip model with a Hugging Face (XLM-RoBERTa) text tower and its own fast tokenizer, random
    weights, made offline: (model spec)."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaConfig

    folder.mkdir(parents=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    corpus = ["a photo of a dog", "a red circle on a green background", "zwei Katzen auf dem Sofa", "東京タワー"] * 20
    tok.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.save(str(folder / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 24, **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    XLMRobertaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=40, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    ).save_pretrained(folder)  # fmt: skip
    (folder / "configs").mkdir()
    text_cfg = {"hf_model_name": str(folder), "hf_tokenizer_name": str(folder), "hf_proj_type": "linear",
                "hf_pooler_type": "mean_pooler", "context_length": 24}  # fmt: skip
    vision_cfg = {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16}
    model_cfg = {"embed_dim": 32, "vision_cfg": vision_cfg, "text_cfg": text_cfg}
    (folder / "configs" / "tiny-hf-clip.json").write_text(json.dumps(model_cfg))
    open_clip = import_open_clip("tiny-hf-clip")  # with its Hugging Face adapter, whatever came before
    open_clip.add_model_config(folder / "configs")
    model = open_clip.create_model("tiny-hf-clip", pretrained_text=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "weights.safetensors"))
    return f"tiny-hf-clip:{folder / 'weights.safetensors'}"


def test_a_hugging_face_text_tower_is_exported_too(tmp_path):
    pytest.importorskip("transformers")
    from clifs.engine.models.openclip import load

    spec = _tiny_hf_clip(tmp_path / "tiny-hf")
    encoder = load(spec, device="cpu")
    assert model_cache.store(tmp_path / "cache", spec, encoder)
    text = model_cache.load_text(tmp_path / "cache", spec, precision="fp32")
    assert text is not None
    texts = ["a photo of a dog", "zwei Katzen", "  Café  crème &amp; 東京 ", "", "dog " * 40]
    np.testing.assert_allclose(text.encode_texts(texts), encoder.encode_texts(texts), atol=1e-4)
    for t in texts:  # padded to the context either way: one text alone gives the same vector
        np.testing.assert_allclose(text.encode_texts([t]), encoder.encode_texts([t]), atol=1e-4)


def test_a_hugging_face_tower_loads_after_a_plain_vit_in_one_process(tmp_path):
    """A plain ViT imports open_clip without transformers (4 s saved); a model that needs it, loaded
    later in the same process (the window switching models), still gets its Hugging Face text tower."""
    pytest.importorskip("transformers")
    spec = _tiny_hf_clip(tmp_path / "tiny-hf")
    code = f"""
import sys
from clifs.engine.models.openclip import load
load({f"{TEST_MODEL}:{WEIGHTS}"!r}, device="cpu")
assert "transformers" not in sys.modules, "a plain ViT imported transformers"
import open_clip
open_clip.add_model_config({str(tmp_path / "tiny-hf" / "configs")!r})
print(load({spec!r}, device="cpu").encode_texts(["zwei Katzen"]).shape)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clifs_env(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["(1,", "32)"]


def test_homes_sharing_a_model_cache_export_the_model_once(tmp_path, monkeypatch):
    cache = tmp_path / "shared-models"
    monkeypatch.setenv("CLIFS_MODEL_CACHE", str(cache))
    photos = tmp_path / "photos"
    write_single_objects(photos)
    assert run_clifs(tmp_path / "first", "index", "--no-progress", str(photos)).returncode == 0
    assert list((cache / "models").glob("*/meta.json")) and not (tmp_path / "first" / "cache" / "models").exists()

    summary, report = index_and_report(tmp_path / "second", photos)  # a new home: the first one's export serves it
    assert summary["indexed"] == 24 and report["torch"] is False
