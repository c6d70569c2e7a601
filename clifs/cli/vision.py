"""`clifs label | segment | detect PATH`: what is in an image, where, and in which box."""

from __future__ import annotations

import argparse
import logging
import os
import re
from pathlib import Path

from clifs.cli.common import (
    Progress,
    add_json_option,
    add_model_option,
    note,
    number,
    open_library,
    print_json,
    printable,
    require_file,
)
from clifs.cli.main import UsageError

log = logging.getLogger(__name__)

MAX_SIZE = 4096  # --size: past this a dense pass takes minutes and gigabytes
LABEL_PROGRESS_MIN = 1024  # prompts (label x template) worth a progress bar: a few seconds on a CPU


def register(sub: argparse._SubParsersAction) -> None:
    from clifs.engine.vision import METHODS, TEMPLATE_SETS

    p = sub.add_parser(
        "label",
        help="zero-shot labels: what is in this image (or sound)? (each label says whether it fits; "
        "'none of these fits' when none does)",
    )
    p.add_argument("path", help="an image or a sound (an indexed file reuses its stored embedding)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--labels", metavar="A,B,C", help="the labels to choose from, comma-separated")
    which.add_argument(
        "--vocab",
        metavar="FILE|NAME",
        help="a text file with one label a line, or a built-in list: everyday, scenes, shapes "
        "(default: everyday objects and scenes; the shapes world for the test model)",
    )
    p.add_argument(
        "--top",
        type=number(1, integer=True),
        default=5,
        help="show the K most likely (default 5); probabilities stay over all labels",
    )
    p.add_argument("--templates", choices=TEMPLATE_SETS, default="ensemble", help="prompt templates per label")
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run_label)

    p = sub.add_parser("segment", help="masks: where is each label in this image? (--auto: what is in it?)")
    p.add_argument("path", help="an image")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--labels", metavar="A,B,C", help="what to find, comma-separated")
    what.add_argument(
        "--auto",
        action="store_true",
        help="no labels: group the picture into regions and name each one from a vocabulary "
        "(a region no name fits is left unnamed)",
    )
    p.add_argument(
        "--vocab",
        metavar="FILE|NAME",
        help="with --auto: the names to choose from, a file with one a line or a built-in list "
        "(default: everyday objects and scenes; the shapes world for the test model)",
    )
    p.add_argument(
        "--out", metavar="DIR", type=Path, help="write an overlay PNG and one mask PNG per label (or region) here"
    )
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
    p.add_argument(
        "--threshold",
        type=number(0.0, 1.0, meaning="box scores lie in [0, 1]"),
        help="report boxes scoring at least this (0-1, default 0.5)",
    )
    _add_size_option(p)
    add_model_option(p)
    add_json_option(p)
    p.set_defaults(func=run_detect)


def _add_size_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--size",
        type=number(16, MAX_SIZE, integer=True, meaning="pixels of the image's short side"),
        metavar="PX",
        help="resize the image's short side to PX for the dense pass (default 1.5x the model's input, in "
        "sliding windows; the model's input size, e.g. 224, is one window and ~3x faster on a CPU)",
    )


def _dense_options(args: argparse.Namespace, **kw):
    from clifs.engine.vision.dense import DenseOptions

    return DenseOptions(short_side=args.size, **kw)


def _labels(text: str) -> list[str]:
    from clifs.engine.vision.vocabulary import parse_labels

    labels = parse_labels(text)
    if not labels:
        raise UsageError("--labels needs at least one label, e.g. --labels 'dog,person'")
    return labels


def _check_out(out: Path | None) -> None:
    """--out must be a folder or not exist yet (it is made)."""
    if out is not None and os.path.lexists(out) and not out.is_dir():
        raise UsageError(f"--out {out} is not a folder")


def _write(what: str, write) -> None:
    try:
        write()
    except OSError as exc:
        raise UsageError(f"cannot write {what}: {exc.strerror or exc}") from None


def _open(path: str, library):
    from clifs.engine.media import MediaError, kind_of, open_image

    require_file(path)
    if kind_of(path) != "image":
        raise UsageError(f"{path} is not an image this command can read")
    try:
        return open_image(path, library.settings.max_image_pixels, min_side=1024)
    except MediaError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _slug(label: str) -> str:
    return re.sub(r"[^\w-]+", "-", label.strip().lower(), flags=re.UNICODE).strip("-") or "label"


def _sound_embedding(path: str, library):
    """A sound's embedding through the model's audio tower: what it sounds like, labelled like a picture."""
    from clifs.engine.media import MediaError

    try:
        return library.searcher.audio_vector(path)
    except MediaError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def run_label(args: argparse.Namespace) -> int:
    from clifs.engine.media import kind_of
    from clifs.engine.vision.labels import label_embedding, none_fits
    from clifs.engine.vision.vocabulary import BUILTIN, VocabularyError, default_labels, load_vocabulary

    require_file(args.path)
    labels = _labels(args.labels) if args.labels is not None else None
    if args.vocab is not None and args.vocab not in BUILTIN:
        require_file(os.path.expanduser(args.vocab), "vocabulary", "vocabulary file")  # a FIFO would block
    library = open_library(args)
    progress = Progress("embedding labels", "prompt", min_total=LABEL_PROGRESS_MIN)
    try:
        encoder = library.encoder
        try:
            if labels is None:
                labels = load_vocabulary(args.vocab) if args.vocab is not None else default_labels(encoder)
        except VocabularyError as exc:
            raise UsageError(str(exc)) from None
        embedding = _sound_embedding(args.path, library) if kind_of(args.path) == "audio" else None
        if embedding is None:
            embedding = library.embedding_for(args.path)
        if embedding is None:
            embedding = encoder.encode_pil([_open(args.path, library)])[0]
        else:
            log.info("labelling the stored embedding of %s (no image pass)", printable(args.path))
        scores = label_embedding(
            encoder,
            embedding,
            labels,
            top=args.top,
            template_set=args.templates,
            cache_dir=library.settings.cache_dir,
            on_progress=progress,
        )
    finally:
        progress.close()
        library.close()
    if args.json:
        print_json([s.as_dict() for s in scores])
    else:
        if none_fits(scores):
            print("none of these fits; best guesses:")
        for s in scores:
            print(f"{s.probability:6.1%}  {printable(s.label)}{'' if s.fits else '  (guess)'}")
    return 0


def run_segment(args: argparse.Namespace) -> int:
    from clifs.engine.vision.dense import UnsupportedModel, segment
    from clifs.engine.vision.overlay import mask_overlay

    if args.auto:
        return _run_auto_segment(args)
    if args.vocab is not None:
        raise UsageError("--vocab names the regions of --auto; with --labels, list what to find there")
    labels = _labels(args.labels)
    require_file(args.path)
    _check_out(args.out)
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

        _write(f"to {args.out}", lambda: args.out.mkdir(parents=True, exist_ok=True))
        stem = Path(args.path).stem
        overlay_path = args.out / f"{stem}-overlay.png"
        _write(overlay_path, lambda: mask_overlay(image, seg.label_map, labels).save(overlay_path))
        for i, (label, row) in enumerate(zip(labels, rows, strict=True)):
            mask = Image.fromarray((seg.label_map == i).astype("uint8") * 255, mode="L")
            mask_path = args.out / f"{stem}-mask-{i:02d}-{_slug(label)}.png"
            _write(mask_path, lambda m=mask, p=mask_path: m.resize(image.size, Image.NEAREST).save(p))
            row.update(mask=str(mask_path), overlay=str(overlay_path))
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            mask = f"  -> {printable(row['mask'])}" if "mask" in row else ""
            print(f"{row['fraction']:6.1%}  {printable(row['label'])}{mask}")
        if args.out:
            print(f"overlay: {printable(overlay_path)}")
    return 0


def _run_auto_segment(args: argparse.Namespace) -> int:
    """`clifs segment PATH --auto`: regions found without a query, each named when a name fits."""
    from dataclasses import replace

    from clifs.engine.vision.dense import UnsupportedModel
    from clifs.engine.vision.overlay import regions_overlay
    from clifs.engine.vision.regions import RegionOptions, auto_segment
    from clifs.engine.vision.vocabulary import BUILTIN, VocabularyError, load_vocabulary

    require_file(args.path)
    _check_out(args.out)
    if args.vocab is not None and args.vocab not in BUILTIN:
        require_file(os.path.expanduser(args.vocab), "vocabulary", "vocabulary file")
    options = RegionOptions()
    if args.size is not None or args.method != "naclip":
        options = replace(options, dense=replace(options.dense, short_side=args.size, method=args.method))
    if args.no_pamr:
        options = replace(options, pamr=False)
    library = open_library(args)
    try:
        try:
            vocabulary = load_vocabulary(args.vocab) if args.vocab is not None else None
        except VocabularyError as exc:
            raise UsageError(str(exc)) from None
        image = _open(args.path, library)
        try:
            found = auto_segment(library.encoder, image, vocabulary, options=options)
        except UnsupportedModel as exc:
            raise UsageError(str(exc)) from None
    finally:
        library.close()
    rows = [r.as_dict() for r in found.regions]
    if args.out:
        from PIL import Image

        _write(f"to {args.out}", lambda: args.out.mkdir(parents=True, exist_ok=True))
        stem = Path(args.path).stem
        overlay_path = args.out / f"{stem}-regions.png"
        _write(overlay_path, lambda: regions_overlay(image, found.region_map, found.regions).save(overlay_path))
        for i, (region, row) in enumerate(zip(found.regions, rows, strict=True)):
            name = region.label or ("background" if region.background else "unnamed")
            mask = Image.fromarray(region.mask.astype("uint8") * 255, mode="L")
            mask_path = args.out / f"{stem}-region-{i:02d}-{_slug(name)}.png"
            _write(mask_path, lambda m=mask, p=mask_path: m.resize(image.size, Image.NEAREST).save(p))
            row.update(mask=str(mask_path), overlay=str(overlay_path))
    if not found.named():
        note("no region matches a name in the vocabulary well enough to be named")
    if args.json:
        print_json(rows)
        return 0
    for region, row in zip(found.regions, rows, strict=True):
        x, y, w, h = region.box
        if region.label is not None:
            what = printable(region.label)
        elif region.background:
            what = f"(background: {printable(region.guess)})"
        else:
            what = f"(unnamed; best guess {printable(region.guess)}?)"
        mask = f"  -> {printable(row['mask'])}" if "mask" in row else ""
        print(f"{region.fraction:6.1%}  {what}  x={x} y={y} w={w} h={h}{mask}")
    if args.out:
        print(f"overlay: {printable(overlay_path)}")
    return 0


def run_detect(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from clifs.engine.vision.boxes import BoxOptions, detect
    from clifs.engine.vision.dense import UnsupportedModel
    from clifs.engine.vision.overlay import box_overlay

    labels = _labels(args.labels)
    require_file(args.path)
    _check_out(args.out)
    options = BoxOptions(dense=_dense_options(args))
    if args.threshold is not None:
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
        _write(f"to {args.out}", lambda: args.out.mkdir(parents=True, exist_ok=True))
        overlay_path = args.out / f"{Path(args.path).stem}-boxes.png"
        boxes = [(d.label, d.score, d.box) for d in found]
        _write(overlay_path, lambda: box_overlay(image, boxes, labels).save(overlay_path))
    if args.json:
        print_json([d.as_dict() for d in found])
    else:
        for d in found:
            x, y, w, h = d.box
            print(f"{d.score:.2f}  {printable(d.label)}  x={x} y={y} w={w} h={h}")
        if args.out:
            print(f"overlay: {printable(overlay_path)}")
    if not found:
        note(f"no boxes above the threshold {options.threshold:g} for {', '.join(map(repr, labels))}")
    return 0
