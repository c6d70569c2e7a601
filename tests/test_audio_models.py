"""Audio towers: the shapes world's soundtrack and media, the registry that binds a tower to an image
model, and each tower's loader on real files (the shipped test tower; random weights in the real
layouts for the towers whose weights cannot be had here)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clifs.engine.models.audio_registry import audio_binding, load_audio_encoder
from clifs.engine.models.base import ModelUnavailable
from devkit.shapes import COLOURS, HELD_OUT_SEED_BASE, SHAPES, scene_rng
from devkit.shapes_av import AUDIO_FORMATS, write_audio, write_shapes_video
from devkit.sounds import PITCH_HZ, sound_for

RATE = 16000


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """All of a file's first audio stream as mono float32, and its rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        return np.concatenate(chunks).astype(np.float32), stream.rate


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def test_every_object_has_its_own_pitch_and_rhythm():
    rng = scene_rng(HELD_OUT_SEED_BASE)
    for colour in COLOURS:
        for shape in SHAPES:
            sound = sound_for(colour, shape, 2.0, RATE, rng)
            assert sound.dtype == np.float32 and sound.shape == (2 * RATE,) and np.abs(sound).max() <= 1
            # the loudest partial is the colour's note, within half a semitone
            assert abs(np.log2(_peak_hz(sound, RATE) / PITCH_HZ[colour]) * 12) <= 0.6, (colour, shape)
    # the shape's rhythm: the envelope of a steady tone barely moves, that of beeps and plucks does
    envelope = {s: np.abs(sound_for("red", s, 2.0, RATE, rng)).reshape(-1, 160).max(axis=1) for s in SHAPES}
    steady = {s: float(envelope[s].std() / envelope[s].mean()) for s in SHAPES}
    assert max(steady["circle"], steady["square"]) < 0.1 < 0.4 < min(steady["triangle"], steady["cross"])


def test_sounds_vary_but_repeat_for_a_seed():
    a = sound_for("blue", "cross", 1.0, RATE, scene_rng(5))
    assert np.array_equal(a, sound_for("blue", "cross", 1.0, RATE, scene_rng(5)))
    assert not np.allclose(a, sound_for("blue", "cross", 1.0, RATE, scene_rng(6)))
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        sound_for("pink", "cross", 1.0, RATE, scene_rng(5))


@pytest.mark.parametrize("suffix", sorted(AUDIO_FORMATS))
def test_audio_files_in_every_format_decode_back(tmp_path, suffix):
    sound = sound_for("green", "circle", 1.5, RATE, scene_rng(1))
    decoded, rate = _decode(write_audio(tmp_path / f"green{suffix}", sound, RATE))
    assert abs(len(decoded) / rate - 1.5) < 0.15  # codecs pad a frame or two
    assert abs(_peak_hz(decoded, rate) - _peak_hz(sound, RATE)) < 3


def test_shapes_video_shows_and_sounds_each_segment(tmp_path):
    import cv2

    path = write_shapes_video(
        tmp_path / "v.mp4", [("red", "circle", 2.0), ("none", "none", 1.0), ("blue", "square", 2.0)]
    )
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (ok := cap.read())[0]:
        frames.append(ok[1][..., ::-1])
    assert len(frames) == 50  # 5 s at 10 fps
    red, blue = np.array(COLOURS["red"]), np.array(COLOURS["blue"])
    near = lambda frame, rgb: (np.abs(frame.astype(int) - rgb).sum(axis=2) < 60).mean()  # noqa: E731
    assert near(frames[10], red) > 0.03 and near(frames[40], blue) > 0.03 and near(frames[25], red) < 0.01
    sound, rate = _decode(path)
    assert abs(_peak_hz(sound[: rate * 2], rate) - PITCH_HZ["red"]) < 15
    assert abs(_peak_hz(sound[rate * 3 : rate * 5], rate) - PITCH_HZ["blue"]) < 30
    assert np.abs(sound[int(rate * 2.2) : int(rate * 2.8)]).max() < 0.05  # the empty scene is nearly silent
    mute = write_shapes_video(tmp_path / "mute.mp4", [("red", "circle", 1.0)], audio=False)
    with av.open(str(mute)) as container:
        assert not container.streams.audio


def test_the_test_model_has_its_audio_tower(test_encoder):
    tower = load_audio_encoder(test_encoder, device="cpu")
    assert tower is not None and tower.image_model_id == test_encoder.model_id and tower.dim == test_encoder.dim
    assert tower.model_id.startswith("shapes-audio-tiny:") and "shapes-vit-tiny" in tower.display_name
    windows = np.stack(
        [sound_for("red", "circle", tower.window_seconds, tower.sample_rate, scene_rng(i)) for i in range(3)]
    )
    out = tower.encode_audio(windows)
    assert out.shape == (3, 64) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert tower.encode_audio(np.zeros((0, tower.window_samples), np.float32)).shape == (0, 64)
    with pytest.raises(ValueError, match=r"takes \(n, 16000\) windows \(1.0 s at 16000 Hz\), got shape \(3, 8000\)"):
        tower.encode_audio(windows[:, :8000])


def test_models_without_a_bound_tower_get_none():
    from clifs.engine.models.registry import load_encoder

    starter = load_encoder("starter", device="cpu")
    assert audio_binding(starter) is None and load_audio_encoder(starter) is None
    assert audio_binding("openclip:ViT-B-32:laion2b_s34b_b79k:abc") is None  # another CLIP's space: no tower
    assert audio_binding("openclip:ViT-B-32-quickgelu:openai:abc").loader.endswith(":_load_wav2clip")
    assert audio_binding("openclip:ViT-B-32:quickgelu:openai:abc").loader.endswith(":_load_wav2clip")
    assert audio_binding("openclip:ViT-B-32:openai:abc") is None  # made with plain GELU: not Wav2CLIP's space
    assert audio_binding("openclip:ViT-B-32-quickgelu:laion400m_e32:abc") is None


def test_a_missing_or_mismatched_test_tower_is_one_clear_message(tmp_path, test_encoder):
    from clifs.engine.models import audio_shapes

    with pytest.raises(
        ModelUnavailable, match=r"test audio tower's file .*gone\.safetensors is missing; .*devkit.train_audio"
    ):
        audio_shapes.load(test_encoder.model_id, 64, weights=tmp_path / "gone.safetensors")
    with pytest.raises(
        ModelUnavailable, match=r"trained against image model openclip:shapes-vit-tiny:.*not the active other"
    ):
        audio_shapes.load("other", 64)
    torn = tmp_path / "torn.safetensors"
    torn.write_bytes(audio_shapes.WEIGHTS.read_bytes()[:1000])
    (tmp_path / "torn.onnx").write_bytes(audio_shapes.GRAPH.read_bytes())
    with pytest.raises(ModelUnavailable, match=r"torn.safetensors cannot be read \(.+\); .*devkit.train_audio"):
        audio_shapes.load(test_encoder.model_id, 64, weights=torn)
    garbled = tmp_path / "garbled.onnx"
    garbled.write_bytes(b"not a graph" * 100)
    with pytest.raises(ModelUnavailable, match=r"graph .*garbled.onnx cannot be read \(.+\); "):
        audio_shapes.load(test_encoder.model_id, 64, graph=garbled)


def test_log_mel_of_a_crop_is_a_slice_of_the_whole():
    """Training crops the features of longer sounds; that equals featurising the cropped samples."""
    from clifs.engine.models.audio_features import log_mel

    sound = sound_for("orange", "triangle", 1.5, RATE, scene_rng(2))[None]
    whole = log_mel(sound, RATE, 400, 160, 40)
    crop = log_mel(sound[:, 160 * 7 : 160 * 7 + RATE], RATE, 400, 160, 40)
    assert crop.shape == (1, 40, 98) and np.allclose(crop, whole[:, :, 7 : 7 + 98], atol=1e-4)
    with pytest.raises(ValueError, match="shorter than one FFT frame"):
        log_mel(sound[:, :100], RATE, 400, 160, 40)


# -- Wav2CLIP: random weights in the published checkpoint's layout ----------------------------------


def wav2clip_checkpoint_layout() -> dict[str, tuple[int, ...]]:
    """The tensors of Wav2CLIP.pt that its code (wav2clip/model/resnet.py, encoder.py) loads, worked out
    from that code: a ResNet-18 with a one-channel 7x7 stem and torchaudio's Spectrogram(n_fft=512)
    window under ``audio_encoder.``, and MLPLayers([512, 512, 512]) under ``audio_transform.``."""
    layout: dict[str, tuple[int, ...]] = {"audio_encoder.spectrogram.window": (512,)}

    def bn(prefix: str, c: int) -> None:
        layout.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                       f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()})  # fmt: skip

    layout["audio_encoder.conv1.weight"] = (64, 1, 7, 7)
    bn("audio_encoder.bn1", 64)
    inplanes = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"audio_encoder.layer{layer}.{block}"
            layout[f"{p}.conv1.weight"] = (planes, inplanes if block == 0 else planes, 3, 3)
            bn(f"{p}.bn1", planes)
            layout[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            if block == 0 and planes != inplanes:
                layout[f"{p}.downsample.0.weight"] = (planes, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes)
        inplanes = planes
    for i in (0, 3):  # Linear, ReLU, Dropout, Linear: the last ReLU and Dropout are dropped
        layout[f"audio_transform.sequential.{i}.weight"] = (512, 512)
        layout[f"audio_transform.sequential.{i}.bias"] = (512,)
    return layout


def random_wav2clip_checkpoint(path: Path) -> Path:
    """Random tensors in that layout, plus what else the pre-training module saves (ignored on load)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in wav2clip_checkpoint_layout().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif len(shape) > 1:  # He initialisation, so a random ResNet still tells inputs apart
            state[key] = torch.randn(shape, generator=gen) * (2 / np.prod(shape[1:])) ** 0.5
        elif key.endswith(("running_var", "bn1.weight", "bn2.weight", "downsample.1.weight")):
            state[key] = 1 + 0.1 * torch.rand(shape, generator=gen)
        else:
            state[key] = 0.01 * torch.randn(shape, generator=gen)
    state["audio_encoder.spectrogram.window"] = torch.hann_window(512)
    state["image_transform.sequential.0.weight"] = torch.randn(512, 512, generator=gen)
    torch.save(state, path)
    return path


def test_wav2clip_modules_have_the_published_layout():
    from clifs.engine.models.audio_wav2clip import Wav2ClipNet

    mine = {k: tuple(v.shape) for k, v in Wav2ClipNet().state_dict().items()}
    assert mine == wav2clip_checkpoint_layout()
    assert sum(np.prod(s) for k, s in mine.items() if "running" not in k and "tracked" not in k) > 11_000_000


def test_wav2clip_loads_random_weights_and_embeds_windows(tmp_path, monkeypatch):
    from clifs.engine.models import audio_wav2clip

    monkeypatch.setenv("CLIFS_WAV2CLIP", str(random_wav2clip_checkpoint(tmp_path / "Wav2CLIP.pt")))
    tower = audio_wav2clip.load("openclip:ViT-B-32:openai:0123", device="cpu")
    assert (tower.sample_rate, tower.window_seconds, tower.dim) == (16000, 5.0, 512)
    assert tower.image_model_id == "openclip:ViT-B-32:openai:0123" and tower.model_id.startswith("wav2clip:")
    rng = scene_rng(3)
    windows = np.stack([sound_for("red", "circle", 5.0, RATE, rng), sound_for("blue", "cross", 5.0, RATE, rng)])
    out = tower.encode_audio(windows)
    assert out.shape == (2, 512) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert float(out[0] @ out[1]) < 0.9999  # different sounds, different vectors
    # each window is normalised on its own: its vector does not depend on the batch it came in
    assert np.allclose(tower.encode_audio(windows[1:]), out[1:], atol=1e-5)


def test_missing_or_unreadable_wav2clip_weights_are_one_clear_message(tmp_path, monkeypatch):
    from clifs.engine.models import audio_wav2clip

    monkeypatch.delenv("CLIFS_WAV2CLIP", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelUnavailable) as missing:
        audio_wav2clip.load("openclip:ViT-B-32:openai:0123")
    message = str(missing.value)
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "Wav2CLIP.pt") in message
    assert "lyrebird-wav2clip" in message and "CLIFS_WAV2CLIP" in message and "\n" not in message
    (tmp_path / "Wav2CLIP.pt").write_text("not a checkpoint")
    monkeypatch.setenv("CLIFS_WAV2CLIP", str(tmp_path / "Wav2CLIP.pt"))
    with pytest.raises(ModelUnavailable, match=r"Wav2CLIP's weights at .*Wav2CLIP.pt cannot be read: "):
        audio_wav2clip.load("openclip:ViT-B-32:openai:0123")


@pytest.mark.slow  # builds, writes and loads a random ViT-B-32 (~10 s)
def test_clip_vit_b_32_openai_gets_wav2clip_and_no_other_clip_does(tmp_path, monkeypatch):
    """The whole binding on real parts: ViT-B-32:openai loaded from the hub cache (random weights where
    the real ones would be; the hub is outside the program), then its bound tower from CLIFS_WAV2CLIP."""
    import huggingface_hub.constants
    import open_clip
    from safetensors.torch import save_file

    from clifs.engine.models.registry import load_encoder

    snapshot = tmp_path / "hub" / "models--timm--vit_base_patch32_clip_224.openai" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    state = open_clip.create_model("ViT-B-32", pretrained=None).state_dict()
    save_file(
        {k: v.half().contiguous() for k, v in state.items()}, str(snapshot / "open_clip_pytorch_model.safetensors")
    )
    del state
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    image = load_encoder("ViT-B-32:openai", device="cpu")
    assert image.model_id.startswith("openclip:ViT-B-32:quickgelu:openai:")  # OpenAI's activation, forced

    monkeypatch.setenv("CLIFS_WAV2CLIP", str(tmp_path / "nowhere.pt"))
    with pytest.raises(ModelUnavailable, match="Wav2CLIP's weights are not at .*nowhere.pt"):
        load_audio_encoder(image)
    monkeypatch.setenv("CLIFS_WAV2CLIP", str(random_wav2clip_checkpoint(tmp_path / "Wav2CLIP.pt")))
    tower = load_audio_encoder(image)
    assert tower.display_name == "Wav2CLIP (bound to CLIP ViT-B-32 openai)"
    assert tower.image_model_id == image.model_id and tower.dim == image.dim == 512
    sound = sound_for("green", "square", tower.window_seconds, tower.sample_rate, scene_rng(4))
    assert tower.encode_audio(sound[None]).shape == (1, 512)
    # with the cache folder, a CPU gets it on ONNX Runtime: exported on the first load, found on the next
    from clifs.engine.models.audio_wav2clip_onnx import OnnxWav2Clip

    for _ in range(2):
        on_cpu = load_audio_encoder(image, device="cpu", cache_dir=tmp_path / "cache")
        assert isinstance(on_cpu, OnnxWav2Clip) and on_cpu.image_model_id == image.model_id
        assert np.allclose(on_cpu.encode_audio(sound[None]), tower.encode_audio(sound[None]), atol=1e-4)


# -- ImageBind: its own model; the real-size layout checked without allocating it ------------------

DATA = Path(__file__).parent / "data"
#: A reduced-width copy of ImageBind-huge: same modules, names, token counts; tiny widths.
SMALL = dict(vision=(64, 2, 2), text=(64, 2, 2), audio=(48, 2, 2), out=32)


def test_imagebind_modules_match_its_code_at_full_size():
    """tests/data/imagebind_huge_layout.json is imagebind_huge()'s state dict for vision, text and audio,
    as ImageBind's code builds it (devkit/imagebind_layout.py); the modules here, built on the meta
    device (nothing allocated), have exactly those names and shapes: 864 tensors, 1.07 billion values."""
    import json

    import torch

    from clifs.engine.models.imagebind import ImageBindNet

    expected = {k: tuple(v) for k, v in json.loads((DATA / "imagebind_huge_layout.json").read_text()).items()}
    with torch.device("meta"):
        mine = {k: tuple(v.shape) for k, v in ImageBindNet().state_dict().items()}
    assert mine == expected
    assert sum(int(np.prod(s)) for s in mine.values()) == 1_073_103_659


def test_imagebind_audio_features_are_kaldi_filter_banks():
    """Against torchaudio 2.11.1's kaldi.fbank with ImageBind's arguments (reference stored as float16)."""
    from clifs.engine.models.imagebind_fbank import fbank

    t = np.arange(16000) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) * (t < 0.6) + np.random.default_rng(15).normal(0, 0.05, 16000)
    reference = np.load(DATA / "imagebind_fbank_reference.npz")["fbank"].astype(np.float32)
    mine = fbank(wave.astype(np.float32)[None])
    assert mine.shape == (1, 1, 128, 204) and np.allclose(mine[0, 0], reference, atol=2e-3)


def random_imagebind_checkpoint(path: Path) -> Path:
    """Random weights of the reduced copy under ImageBind's names, plus another modality's tensors."""
    import torch

    from clifs.engine.models.imagebind import ImageBindNet, Widths

    torch.manual_seed(0)
    state = ImageBindNet(Widths(**SMALL)).state_dict()
    for key, value in state.items():
        if value.is_floating_point() and key.endswith(("pos_embed", "cls_token", "token_embedding.weight")):
            value.normal_(0, 0.1)
    state["modality_trunks.depth.blocks.0.norm_1.weight"] = torch.ones(8)
    torch.save(state, path)
    return path


def test_imagebind_loads_random_weights_and_shares_one_space(tmp_path, monkeypatch):
    from PIL import Image

    from clifs.engine.models import imagebind
    from clifs.engine.models.audio_registry import audio_binding

    path = random_imagebind_checkpoint(tmp_path / "imagebind_huge.pth")
    model = imagebind.load(device="cpu", path=path, widths=imagebind.Widths(**SMALL))
    assert model.model_id.startswith("imagebind:huge:") and model.dim == 32
    images = model.encode_pil([Image.new("RGB", (300, 200), (200, 30, 30)), Image.new("RGB", (64, 64), (20, 40, 220))])
    texts = model.encode_texts(["a red circle", "a blue square"])
    assert images.shape == texts.shape == (2, 32)
    assert np.allclose(np.linalg.norm(np.concatenate([images, texts]), axis=1), 1, atol=1e-5)

    assert audio_binding(model).loader.endswith("imagebind:load_audio")
    tower = load_audio_encoder(model)
    assert tower.image_model_id == model.model_id and tower.dim == 32
    assert (tower.sample_rate, tower.window_seconds) == (16000, 2.0)
    rng = scene_rng(9)
    sounds = np.stack([sound_for("red", "circle", 2.0, RATE, rng), sound_for("blue", "cross", 2.0, RATE, rng)])
    out = tower.encode_audio(sounds)
    assert out.shape == (2, 32) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert float(out[0] @ out[1]) < 0.9999


def test_imagebind_weights_missing_or_of_another_model(tmp_path, monkeypatch):
    import torch

    from clifs.engine.models import imagebind

    monkeypatch.delenv("CLIFS_IMAGEBIND", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(
        ModelUnavailable, match=r"ImageBind's weights are not at .*torch/hub/checkpoints/imagebind_huge.pth: .*CC-BY-NC"
    ):
        imagebind.load(device="cpu")
    torch.save({"modality_trunks.vision.blocks.0.norm_1.weight": torch.ones(3)}, tmp_path / "other.pth")
    with pytest.raises(ModelUnavailable, match=r"ImageBind's weights at .*other.pth cannot be read: "):
        imagebind.load(device="cpu", path=tmp_path / "other.pth")


def test_the_imagebind_model_without_weights_exits_2_with_the_message(tmp_path):
    from tests.conftest import run_clifs

    proc = run_clifs(tmp_path / "home", "search", "a dog", "--model", "imagebind", TORCH_HOME=str(tmp_path / "torch"))
    assert proc.returncode == 2, proc.stderr
    assert "ImageBind's weights are not at" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # renders, embeds, trains and exports (~15 s on a busy 2-core machine)
def test_the_training_script_learns_and_writes_a_loadable_tower(tmp_path, test_encoder):
    """A few dozen steps of devkit/train_audio.py on a small pool: the CLIP loss falls, and the weights and
    the ONNX graph it writes load as the test model's tower (the shipped one came from 1500 such steps)."""
    from clifs.engine.models import audio_shapes
    from devkit.train_audio import train

    out = tmp_path / "tower.safetensors"
    losses = train(steps=40, batch=64, lr=3e-3, seed=1, out=out, per_class=8, log_every=1000)
    assert len(losses) == 40 and np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses
    tower = audio_shapes.load(test_encoder.model_id, test_encoder.dim, weights=out)
    sound = sound_for("yellow", "square", 1.0, RATE, scene_rng(HELD_OUT_SEED_BASE + 3))
    assert tower.encode_audio(sound[None]).shape == (1, 64)


def test_wav2clip_runs_on_onnx_runtime_without_torch_after_its_first_load(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    import torch

    from clifs.engine.models import audio_wav2clip
    from clifs.engine.models.audio_wav2clip_onnx import OnnxWav2Clip, load_record, log_spectrogram

    weights = random_wav2clip_checkpoint(tmp_path / "Wav2CLIP.pt")
    monkeypatch.setenv("CLIFS_WAV2CLIP", str(weights))
    rng = scene_rng(12)
    windows = np.stack([sound_for("purple", "square", 5.0, RATE, rng), sound_for("orange", "cross", 5.0, RATE, rng)])
    tower = audio_wav2clip.load("openclip:ViT-B-32:openai:0123", device="cpu")
    with torch.no_grad():  # the numpy spectrogram is torch's
        expected = tower.net.audio_encoder.log_spectrogram(torch.from_numpy(windows)).numpy()
    assert np.allclose(log_spectrogram(windows), expected, atol=2e-3)  # torch.stft is float32, numpy float64

    cache = tmp_path / "cache"
    exported = audio_wav2clip.store(cache, tower)
    assert isinstance(exported, OnnxWav2Clip) and exported.model_id == tower.model_id
    assert np.allclose(exported.encode_audio(windows), tower.encode_audio(windows), atol=1e-4)
    np.save(tmp_path / "windows.npy", windows)
    script = f"""
import sys, numpy as np
from pathlib import Path
from clifs.engine.models.audio_wav2clip_onnx import load_record
tower = load_record(Path({str(cache)!r}), "openclip:ViT-B-32:openai:0123")
np.save({str(tmp_path / "out.npy")!r}, tower.encode_audio(np.load({str(tmp_path / "windows.npy")!r})))
print(tower.model_id, "torch" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CLIFS_WAV2CLIP": str(weights)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [tower.model_id, "False"]
    assert np.allclose(np.load(tmp_path / "out.npy"), tower.encode_audio(windows), atol=1e-4)
    # new weights in the same place: the record no longer holds
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_record(cache, "openclip:ViT-B-32:openai:0123") is None
