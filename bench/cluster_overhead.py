"""In-process `clifs index` vs `clifs index --cluster local` on the same photos: the cost of the engine.

    python bench/cluster_overhead.py [--photos 400] [--model shapes-vit-tiny|ViT-B-32] [--repeats 3]

Generates 1024x768 JPEGs (shapes-world scenes upscaled with sensor-like noise), exports the model once
(its CPU runtime towers; ViT-B-32 gets random weights in a file, same FLOPs as the real ones), then per
repeat indexes the photos into a fresh CLIFS_HOME (a copy of that export) both ways, each a `clifs`
process: the command's wall time (Ray's start included) and its own "seconds" (scan, decode, embed,
commit). Medians over repeats, the two ways interleaved. Afterwards the lowest cosine between the two
homes' vectors of each photo (the same-results check, here on ViT-B-32 too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a copy of the repository, without installing it
sys.path.insert(0, str(ROOT / "bench"))

from index_throughput import make_jpegs  # noqa: E402

from clifs.engine.config import Settings  # noqa: E402
from clifs.engine.library import Library  # noqa: E402


def model_spec(name: str, folder: Path) -> str:
    """The spec `clifs` loads: the shipped test model by name, or random weights of an open_clip arch in a file."""
    if name == "shapes-vit-tiny":
        return name
    import open_clip
    from safetensors.torch import save_file

    weights = folder / f"{name}.safetensors"
    model = open_clip.create_model(name)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return f"{name}:{weights}"


def export(spec: str, home: Path) -> Path:
    settings = Settings.load(home)
    settings.model = spec
    Library(settings).close()  # loads the model with torch and exports its towers, as a first run does
    return settings.cache_dir


def index(home: Path, photos: Path, spec: str, cluster: bool) -> tuple[float, dict]:
    env = dict(os.environ, CLIFS_HOME=str(home), CLIFS_MODEL=spec, PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "clifs.cli.main", "index", str(photos), "--json", "--no-progress", "--no-ocr"]
    if cluster:
        args += ["--cluster", "local"]
    started = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"clifs index failed:\n{proc.stderr}")
    return wall, json.loads(proc.stdout)[0]


def lowest_cosine(a: Path, b: Path, spec: str, photos: list[Path]) -> float:
    libraries = []
    for home in (a, b):
        settings = Settings.load(home)
        settings.model = spec
        libraries.append(Library(settings, load_model=False))
    cosines = []
    for path in photos:
        u, v = (lib.embedding_for(path).astype(np.float32) for lib in libraries)
        cosines.append(float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))
    for lib in libraries:
        lib.close()
    return min(cosines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument(
        "--model", default="shapes-vit-tiny", help="shapes-vit-tiny, or an open_clip arch (random weights)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clifs-cluster-bench-") as tmp:
        tmp = Path(tmp)
        photos = make_jpegs(tmp / "photos", args.photos, (1024, 768))
        spec = model_spec(args.model, tmp)
        exported = export(spec, tmp / "exported")
        results: dict[str, list[tuple[float, float]]] = {"in-process": [], "--cluster local": []}
        homes = {}
        for repeat in range(args.repeats):
            for name, cluster in (("in-process", False), ("--cluster local", True)):
                home = tmp / f"{'cluster' if cluster else 'local'}-{repeat}"
                shutil.copytree(exported, home / "cache")
                wall, summary = index(home, tmp / "photos", spec, cluster)
                assert summary["indexed"] == args.photos and not summary["failed"], summary
                results[name].append((wall, summary["seconds"]))
                homes[name] = home
                print(
                    f"  {name:16} repeat {repeat}: {wall:6.1f} s wall, {summary['seconds']:6.1f} s indexing", flush=True
                )
        print(
            f"\n{args.photos} photos of 1024x768, model {args.model}, medians of {args.repeats}, {os.cpu_count()} CPUs:"
        )
        base_wall = statistics.median(w for w, _ in results["in-process"])
        base_index = statistics.median(s for _, s in results["in-process"])
        for name, runs in results.items():
            wall, seconds = statistics.median(w for w, _ in runs), statistics.median(s for _, s in runs)
            print(
                f"  {name:16} {wall:6.1f} s wall ({wall / base_wall:4.2f}x), {seconds:6.1f} s indexing "
                f"({seconds / base_index:4.2f}x), {args.photos / seconds:6.1f} photos/s"
            )
        cosine = lowest_cosine(homes["in-process"], homes["--cluster local"], spec, photos)
        print(f"  lowest cosine, cluster vs in-process vectors of the same photo: {cosine:.6f}")


if __name__ == "__main__":
    main()
