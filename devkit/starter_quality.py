"""The starter model's quality metric on the demo media (assets/demo/queries.json ground truth).

top-1: the best-ranked file is correct (for a video: its best moment is inside a ground-truth
time range); R@5: the share of a query's correct files among the first five. A video counts once,
at its best moment, as search shows it. bench/starter_quality.py prints it; tests/test_starter.py asserts it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from clifs.engine.assets import demo_folder

DEMO = demo_folder()
VIDEO_SUFFIXES = (".mp4", ".mpg", ".avi", ".mov", ".mkv", ".webm")
FRAME_STEP_S = 1.0


@dataclass
class Item:
    file: str
    time: float | None  # seconds into a video; None for a photo


@dataclass
class Query:
    text: str
    imagenet: bool
    images: list[str]
    videos: dict[str, list[list[float]]] = field(default_factory=dict)

    @property
    def files(self) -> set[str]:
        return set(self.images) | set(self.videos)

    def hit(self, item: Item) -> bool:
        if item.time is None:
            return item.file in self.images
        return any(a <= item.time <= b for a, b in self.videos.get(item.file, []))


def load_queries(path: Path = DEMO / "queries.json") -> list[Query]:
    data = json.loads(path.read_text())
    return [Query(q["query"], q["imagenet"], q["images"], q.get("videos", {})) for q in data["queries"]]


def video_frames(path: Path, step: float = FRAME_STEP_S) -> list[tuple[float, Image.Image]]:
    """Frames at 0, step, 2*step, ... seconds, found by time (not frame number)."""
    cap = cv2.VideoCapture(str(path))
    duration = cap.get(cv2.CAP_PROP_FRAME_COUNT) / max(cap.get(cv2.CAP_PROP_FPS), 1e-6)
    frames, t = [], 0.0
    while t < duration:
        cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000)
        ok, frame = cap.read()
        if not ok:
            break
        frames.append((t, Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))))
        t += step
    cap.release()
    return frames


def demo_items(folder: Path = DEMO) -> tuple[list[Item], list[Image.Image]]:
    items, images = [], []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            items.append(Item(path.name, None))
            images.append(Image.open(path).convert("RGB"))
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            for t, frame in video_frames(path):
                items.append(Item(path.name, t))
                images.append(frame)
    return items, images


def rank_files(scores: np.ndarray, items: list[Item]) -> list[Item]:
    """Items sorted by score, one per file (a video at its best moment)."""
    best: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.file not in best or scores[i] > scores[best[item.file]]:
            best[item.file] = i
    return [items[i] for i in sorted(best.values(), key=lambda i: -scores[i])]


def evaluate(item_emb: np.ndarray, query_emb: np.ndarray, items: list[Item], queries: list[Query]) -> list[dict]:
    rows = []
    for q, qe in zip(queries, query_emb):
        ranked = rank_files(item_emb @ qe, items)
        found = sum(q.hit(it) for it in ranked[:5])
        rows.append(
            {
                "query": q.text,
                "imagenet": q.imagenet,
                "top1": q.hit(ranked[0]),
                "r5": found / min(5, len(q.files)),
                "best": ranked[0].file + ("" if ranked[0].time is None else f"@{ranked[0].time:.0f}s"),
            }
        )
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    cov = [r for r in rows if r["imagenet"]]
    return {
        "covered_top1": float(np.mean([r["top1"] for r in cov])),
        "covered_r5": float(np.mean([r["r5"] for r in cov])),
        "all_top1": float(np.mean([r["top1"] for r in rows])),
        "all_r5": float(np.mean([r["r5"] for r in rows])),
    }
