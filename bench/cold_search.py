"""Cold `clifs search "text"`: a new process each time (warm disk cache), median wall time.

    python bench/cold_search.py [--arch ViT-B-32] [--repeats 5]

Writes random ViT-B-32 weights to a temp checkpoint (same size and load path as real
weights), indexes a few generated images with it, then times whole `clifs search`
processes, and `clifs list` as the floor every command pays. clifs's own modules are
byte-compiled first, as pip does when it installs the wheel (an editable checkout run with
PYTHONDONTWRITEBYTECODE compiles them afresh in every process: ~20 ms here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict[str, str], repeats: int) -> float:
    """Median wall time of ``repeats`` runs after one untimed run (it warms the disk cache, and the first
    search after indexing brings the vector file up to the OCR pass's commit and saves it)."""
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import compileall

    import open_clip
    from safetensors.torch import save_file

    from devkit.shapes import iter_scenes

    root = Path(__file__).resolve().parent.parent
    for package in ("clifs", "indexer"):
        compileall.compile_dir(root / package, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / f"{args.arch}.safetensors"
        model = open_clip.create_model(args.arch)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        del model
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for i, scene in enumerate(iter_scenes(3, 16, 224)):
            scene.image.save(photos / f"{i}.jpg")
        env = dict(os.environ, CLIFS_HOME=str(Path(tmp) / "home"), CLIFS_MODEL=f"{args.arch}:{weights}")
        clifs = [sys.executable, "-m", "clifs.cli.main"]
        subprocess.run([*clifs, "index", str(photos), "--no-progress"], env=env, check=True, capture_output=True)
        search = timed([*clifs, "search", "a red circle", "--top", "5"], env, args.repeats)
        listing = timed([*clifs, "list"], env, args.repeats)
    print(
        f"cold `clifs search` with {args.arch}: {search:.2f} s median over {args.repeats} (clifs list: {listing:.2f} s)"
    )


if __name__ == "__main__":
    main()
