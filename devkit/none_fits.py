"""Does "none of these fits" come when it should? The FitRule calibrated and measured on held-out data.

    python -m devkit.none_fits                # the test model: calibrate on one set of seeds, measure on others
    python -m devkit.none_fits --starter      # the offline starter model on the demo photos

A trial is one image and a list of 1-6 labels: "present" lists hold one of the image's true
labels (the others drawn from the rest of the world's names), "absent" lists hold none. The rule
should say "none of these fits" for absent lists (goal: at least 90% of them) and not for present
ones (goal: at most 5%). Calibration picks the rule with the best balance (Youden's J: absent lists
caught minus present lists wrongly rejected) among those that wrongly reject at most
``PRESENT_BUDGET`` of the present ones, on seeds disjoint from the measurement's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from clifs.engine.models.base import Encoder
from clifs.engine.vision.labels import FitRule, embed_labels, fit_rule
from clifs.engine.vision.vocabulary import load_vocabulary
from devkit.shapes import HELD_OUT_SEED_BASE, iter_scenes

NAMES = load_vocabulary("shapes")
CALIBRATION_SEED = HELD_OUT_SEED_BASE + 40_000
MEASURE_SEED = HELD_OUT_SEED_BASE + 41_000
#: Calibration keeps the share of present lists wrongly called "none fits" at most this (the goal).
PRESENT_BUDGET = 0.05
MAX_LIST = 6


@dataclass
class Trial:
    cosines: np.ndarray  # (k,) the image's cosine with each listed label
    probs: np.ndarray  # (k,) softmax over the list
    present: bool  # the list holds one of the image's true labels


@dataclass
class Rates:
    absent_none: float  # share of absent lists where "none fits" is said (goal >= 0.9)
    present_none: float  # share of present lists where it is wrongly said (goal <= 0.05)
    n_absent: int
    n_present: int

    def as_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def says_none(rule: FitRule, trial: Trial) -> bool:
    return not rule.fits(trial.cosines, trial.probs).any()


def rates(rule: FitRule, trials: Sequence[Trial]) -> Rates:
    absent = [says_none(rule, t) for t in trials if not t.present]
    present = [says_none(rule, t) for t in trials if t.present]
    return Rates(
        float(np.mean(absent)), float(np.mean(present)) if present else float("nan"), len(absent), len(present)
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def make_trials(
    cosines: np.ndarray, truths: Sequence[set[int]], logit_scale: float, rng: np.random.Generator, per_image: int = 1
) -> list[Trial]:
    """``cosines`` (n_images, n_names), ``truths`` the true name indices per image -> present and absent trials."""
    n_names = cosines.shape[1]
    out = []
    for row, truth in zip(cosines, truths, strict=True):
        others = [j for j in range(n_names) if j not in truth]
        for _ in range(per_image):
            for present in (True, False) if truth else (False,):
                k = int(rng.integers(1, MAX_LIST + 1))
                picked = list(rng.choice(others, size=min(len(others), k - present), replace=False))
                if present:
                    picked.append(int(rng.choice(sorted(truth))))
                if not picked:
                    continue
                c = row[picked]
                out.append(Trial(c, softmax(logit_scale * c), present))
    return out


def shapes_trials(
    encoder: Encoder, seed: int, n_images: int, n_objects: int, template_set: str, size: int = 64
) -> list[Trial]:
    scenes = list(iter_scenes(seed, n_images, size=size, n_objects=n_objects))
    cosines = encoder.encode_pil([s.image for s in scenes]) @ embed_labels(encoder, NAMES, template_set).T
    truths = [{NAMES.index(o.name) for o in s.objects} for s in scenes]
    return make_trials(cosines, truths, encoder.logit_scale, np.random.default_rng(seed))


def foreign_trials(encoder: Encoder, seed: int, n_images: int, template_set: str) -> list[Trial]:
    """Shapes-world images asked about everyday things the test model never read (COCO's names): all absent."""
    everyday = load_vocabulary("everyday")
    scenes = list(iter_scenes(seed, n_images, size=64))
    cosines = encoder.encode_pil([s.image for s in scenes]) @ embed_labels(encoder, everyday, template_set).T
    return make_trials(cosines, [set() for _ in scenes], encoder.logit_scale, np.random.default_rng(seed))


def grid(low: float = 0.50) -> list[FitRule]:
    """Candidate rules: floors from ``low`` to 0.8, sure cosines from the floor to 0.9 (or never sure)."""
    floors = np.round(np.arange(low, 0.801, 0.025), 3)
    rules = []
    for floor in floors:
        for sure in [s for s in np.round(np.arange(low, 0.901, 0.025), 3) if s >= floor] + [np.inf]:
            for flat, share in itertools.product((0.3, 0.5, 0.7, 0.9, 1.0), (0.0, 0.3, 0.5)):
                if sure == floor and (flat, share) != (1.0, 0.0):
                    continue  # an empty grey zone: the other two do nothing
                rules.append(FitRule(float(floor), float(sure), flat, share))
    return rules


def calibrate(trials: Sequence[Trial], budget: float = PRESENT_BUDGET, low: float = 0.50) -> tuple[FitRule, Rates]:
    """The rule with the best Youden's J (absent caught - present rejected) that rejects at most ``budget``
    of the present lists; the first in grid order among equals (lower thresholds, no grey zone first)."""
    best: tuple[FitRule, Rates] | None = None
    for rule in grid(low):
        r = rates(rule, trials)
        j = r.absent_none - r.present_none
        if r.present_none <= budget and (best is None or j > best[1].absent_none - best[1].present_none + 1e-9):
            best = (rule, r)
    assert best is not None, "no rule within the budget"
    return best


def starter_trials(encoder: Encoder, demo: Path, template_set: str = "compact") -> list[Trial]:
    """The demo photos against their ImageNet-covered ground-truth queries (articles dropped) as labels."""
    from PIL import Image

    queries = [q for q in json.loads((demo / "queries.json").read_text())["queries"] if q["imagenet"] and q["images"]]
    labels = [re.sub(r"^(a|an|the) ", "", q["query"]) for q in queries]
    photos = sorted({p for q in queries for p in q["images"]} | {p.name for p in demo.glob("*.jpg")})
    emb = encoder.encode_pil([Image.open(demo / p).convert("RGB") for p in photos])
    cosines = emb @ embed_labels(encoder, labels, template_set).T
    truths = [{j for j, q in enumerate(queries) if p in q["images"]} for p in photos]
    return make_trials(cosines, truths, encoder.logit_scale, np.random.default_rng(0), per_image=20)


def report_test_model(n: int, out: Path | None) -> dict:
    from clifs.engine.models import testmodel

    encoder = testmodel.load(device="cpu")
    shipped = fit_rule(encoder)
    calibration = shapes_trials(encoder, CALIBRATION_SEED, n, 1, "compact") + shapes_trials(
        encoder, CALIBRATION_SEED + 1, n, 1, "ensemble"
    )
    rule, cal_rates = calibrate(calibration)
    print(f"calibrated on {len(calibration)} single-object trials: {rule} -> {cal_rates.as_dict()}")
    print(
        f"shipped rule: floor {shipped.floor} sure {shipped.sure} flat {shipped.max_flatness} share {shipped.min_probability}"
    )
    result = {"calibrated": {"rule": _rule_dict(rule), "rates": cal_rates.as_dict()}, "shipped": _rule_dict(shipped)}
    rows = []
    for template_set in ("compact", "ensemble"):
        for size in (64, 128):
            for n_objects in (1, 2, 3, 0):
                seed = MEASURE_SEED + 10 * n_objects + (size == 128) * 100 + (template_set == "ensemble") * 1000
                r = rates(shipped, shapes_trials(encoder, seed, n, n_objects, template_set, size))
                rows.append({"templates": template_set, "size": size, "objects": n_objects, **r.as_dict()})
        r = rates(shipped, foreign_trials(encoder, MEASURE_SEED + 5000, n, template_set))
        rows.append({"templates": template_set, "size": 64, "objects": "everyday words", **r.as_dict()})
    abs_only = replace(shipped, max_flatness=1.0, min_probability=0.0)
    shape_only = FitRule(floor=-1.0, sure=np.inf, max_flatness=0.5, min_probability=0.5)
    singles = shapes_trials(encoder, MEASURE_SEED + 7, n, 1, "compact")
    result["ablation"] = {
        "absolute cosine only": rates(abs_only, singles).as_dict(),
        "distribution shape only (flatness <= 0.5, p >= 0.5)": rates(shape_only, singles).as_dict(),
        "CLIP's stated rule on the test model": rates(fit_rule_for("clip"), singles).as_dict(),
    }
    result["measured"] = rows
    print(
        f"{'templates':9} {'size':>4} {'objects':>15}  {'absent->none':>12}  {'present->none':>13}  (n absent/present)"
    )
    for row in rows:
        print(
            f"{row['templates']:9} {row['size']:>4} {row['objects']!s:>15}  {row['absent_none']:12.3f}  "
            f"{row['present_none']:13.3f}  ({row['n_absent']}/{row['n_present']})"
        )
    for name, r in result["ablation"].items():
        print(f"ablation, single objects, compact: {name}: {r}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
    return result


def fit_rule_for(kind: str) -> FitRule:
    from clifs.engine.vision import labels

    return {"clip": labels.CLIP_RULE, "starter": labels.STARTER_RULE, "test": labels.TEST_MODEL_RULE}[kind]


def report_starter(demo: Path) -> dict:
    from clifs.engine.models import starter

    encoder = starter.load(device="cpu")
    trials = starter_trials(encoder, demo)
    shipped = fit_rule(encoder)
    rule, r = calibrate(trials, budget=0.10, low=0.30)
    print(f"starter, calibrated on the demo photos (present budget 10%): {rule} -> {r.as_dict()}")
    print(f"starter, shipped rule {shipped}: {rates(shipped, trials).as_dict()}")
    best_abs = max(
        (FitRule(f, f) for f in np.round(np.arange(0.30, 0.801, 0.025), 3)),
        key=lambda rule: (lambda r: r.absent_none - r.present_none if r.present_none <= 0.10 else -1)(
            rates(rule, trials)
        ),
    )
    print(f"starter, absolute cosine only (best floor {best_abs.floor}): {rates(best_abs, trials).as_dict()}")
    return {"calibrated": _rule_dict(rule), "shipped": rates(shipped, trials).as_dict()}


def _rule_dict(rule: FitRule) -> dict:
    return {
        "floor": rule.floor,
        "sure": rule.sure,
        "max_flatness": rule.max_flatness,
        "min_probability": rule.min_probability,
    }


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400, help="images per measured cell")
    parser.add_argument("--starter", action="store_true", help="the offline starter model on the demo photos")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    if args.starter:
        report_starter(Path(__file__).resolve().parents[1] / "assets" / "demo")
    else:
        report_test_model(args.images, args.json)


if __name__ == "__main__":
    main()
