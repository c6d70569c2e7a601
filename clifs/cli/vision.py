"""`clifs label | segment | detect PATH`: what is in an image, where, and in which box."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from clifs.cli.common import add_json_option, add_model_option, open_library, print_json
from clifs.cli.main import UsageError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from clifs.engine.vision import METHODS, TEMPLATE_SETS

    p = sub.add_parser("label", help="zero-shot labels: what is in this image?")
    p.add_argument("path", help="an image (an indexed file reuses its stored embedding)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--labels", metavar="A,B,C", help="the labels to choose from, comma-separated")
    which.add_argument(
        "--vocab",
        metavar="FILE|NAME",
        help="a text file with one label a line, or a built-in list: everyday, scenes, shapes "
        "(default: everyday objects and scenes; the shapes world for the test model)",
    )
    p.add_argument(
        "--top", type=int, default=5, help="show the K most likely (default 5); probabilities stay over all labels"
    )
    p.add_argument("--templates", choices=TEMPLATE_SETS, default="ensemble", help="prompt templates per label")
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run_label)

    p = sub.add_parser("segment", help="masks: where is each label in this image?")
    p.add_argument("path", help="an image")
    p.add_argument("--labels", metavar="A,B,C", required=True, help="what to find, comma-separated")
    p.add_argument("--out", metavar="DIR", type=Path, help="write an overlay PNG and one mask PNG per label here")
    p.add_argument("--method", choices=METHODS, default="naclip", help="last-block attention (default naclip)")
    p.add_argument("--no-pamr", action="store_true", help="skip the edge-aware refinement (faster, blockier)")
    _add_size_option(p)
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run_segment)

    p = sub.add_parser("detect", help="boxes around each label in this image")
    p.add_argument("path", help="an image")
    p.add_argument("--labels", metavar="A,B,C", required=True, help="what to find, comma-separated")
    p.add_argument("--out", metavar="DIR", type=Path, help="write an overlay PNG with the boxes here")
    p.add_argument("--threshold", type=float, help="report boxes scoring at least this (default 0.5)")
    _add_size_option(p)
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run_detect)


def _add_size_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--size",
        type=int,
        metavar="PX",
        help="resize the image's short side to PX for the dense pass (default 1.5x the model's input, in "
        "sliding windows; the model's input size, e.g. 224, is one window and ~3x faster on a CPU)",
    )


def _dense_options(args: argparse.Namespace, **kw):
    from clifs.engine.vision.dense import DenseOptions

    if args.size is not None and args.size < 16:
        raise UsageError("--size must be at least 16 pixels")
    return DenseOptions(short_side=args.size, **kw)


def _labels(text: str) -> list[str]:
    from clifs.engine.vision.vocabulary import parse_labels

    labels = parse_labels(text)
    if not labels:
        raise UsageError("--labels needs at least one label, e.g. --labels 'dog,person'")
    return labels


def _open(path: str, library):
    from clifs.engine.media import MediaError, kind_of, open_image

    if not Path(path).is_file():
        raise UsageError(f"file not found: {path}")
    if kind_of(path) != "image":
        raise UsageError(f"{path} is not an image this command can read")
    try:
        return open_image(path, library.settings.max_image_pixels, min_side=1024)
    except MediaError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _slug(label: str) -> str:
    return re.sub(r"[^\w-]+", "-", label.strip().lower(), flags=re.UNICODE).strip("-") or "label"


def run_label(args: argparse.Namespace) -> int:
    from clifs.engine.vision.labels import label_embedding
    from clifs.engine.vision.vocabulary import VocabularyError, default_labels, load_vocabulary

    if args.top < 1:
        raise UsageError("--top must be at least 1")
    if not Path(args.path).exists():
        raise UsageError(f"file not found: {args.path}")
    library = open_library(args)
    try:
        encoder = library.encoder
        try:
            labels = (
                _labels(args.labels)
                if args.labels
                else load_vocabulary(args.vocab)
                if args.vocab
                else default_labels(encoder)
            )
        except VocabularyError as exc:
            raise UsageError(str(exc)) from None
        embedding = library.embedding_for(args.path)
        if embedding is None:
            embedding = encoder.encode_pil([_open(args.path, library)])[0]
        else:
            log.info("labelling the stored embedding of %s (no image pass)", args.path)
        scores = label_embedding(
            encoder, embedding, labels, top=args.top, template_set=args.templates, cache_dir=library.settings.cache_dir
        )
    finally:
        library.close()
    if args.json:
        print_json([s.as_dict() for s in scores])
    else:
        for s in scores:
            print(f"{s.probability:6.1%}  {s.label}")
    return 0


def run_segment(args: argparse.Namespace) -> int:
    from clifs.engine.vision.dense import UnsupportedModel, segment
    from clifs.engine.vision.overlay import mask_overlay

    labels = _labels(args.labels)
    options = _dense_options(args, method=args.method, pamr=not args.no_pamr)
    library = open_library(args)
    try:
        image = _open(args.path, library)
        try:
            seg = segment(library.encoder, image, labels, options=options)
        except UnsupportedModel as exc:
            raise UsageError(str(exc)) from None
    finally:
        library.close()
    fractions = seg.fractions()
    rows = [{"label": label, "fraction": fractions[label]} for label in labels]
    if args.out:
        from PIL import Image

        args.out.mkdir(parents=True, exist_ok=True)
        stem = Path(args.path).stem
        overlay_path = args.out / f"{stem}-overlay.png"
        mask_overlay(image, seg.label_map, labels).save(overlay_path)
        for i, (label, row) in enumerate(zip(labels, rows, strict=True)):
            mask = Image.fromarray((seg.label_map == i).astype("uint8") * 255, mode="L")
            mask_path = args.out / f"{stem}-mask-{i:02d}-{_slug(label)}.png"
            mask.resize(image.size, Image.NEAREST).save(mask_path)
            row.update(mask=str(mask_path), overlay=str(overlay_path))
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['fraction']:6.1%}  {row['label']}" + (f"  -> {row['mask']}" if "mask" in row else ""))
        if args.out:
            print(f"overlay: {overlay_path}")
    return 0


def run_detect(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from clifs.engine.vision.boxes import BoxOptions, detect
    from clifs.engine.vision.dense import UnsupportedModel
    from clifs.engine.vision.overlay import box_overlay

    labels = _labels(args.labels)
    options = BoxOptions(dense=_dense_options(args))
    if args.threshold is not None:
        if not 0.0 <= args.threshold <= 1.0:
            raise UsageError("--threshold must be between 0 and 1")
        options = replace(options, threshold=args.threshold)
    library = open_library(args)
    try:
        image = _open(args.path, library)
        try:
            found = detect(library.encoder, image, labels, options)
        except UnsupportedModel as exc:
            raise UsageError(str(exc)) from None
    finally:
        library.close()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        overlay_path = args.out / f"{Path(args.path).stem}-boxes.png"
        box_overlay(image, [(d.label, d.score, d.box) for d in found], labels).save(overlay_path)
    if args.json:
        print_json([d.as_dict() for d in found])
    else:
        for d in found:
            x, y, w, h = d.box
            print(f"{d.score:.2f}  {d.label}  x={x} y={y} w={w} h={h}")
        if not found:
            print("no boxes above the threshold")
        if args.out:
            print(f"overlay: {overlay_path}")
    return 0
