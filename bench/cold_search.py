"""Cold `clifs search "text"`: a new process each time (warm disk cache), median wall time.

    python bench/cold_search.py [--arch ViT-B-32] [--repeats 5] [--against CHECKOUT]

Writes random ViT-B-32 weights to a temp checkpoint (same size and load path as real
weights), indexes a few generated images with it, then times whole `clifs search`
processes, and `clifs list` as the floor every command pays. clifs's own modules are
byte-compiled first, as pip does when it installs the wheel (an editable checkout run with
PYTHONDONTWRITEBYTECODE compiles them afresh in every process: ~20 ms here).

``--against CHECKOUT`` (another revision, e.g. ``git worktree add /tmp/before HEAD~5``) runs the same
commands with that checkout's code on a home it indexed itself, alternating with this one run by
run, so both sides share the machine's moment: on a machine whose speed drifts, the ratio is the number.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(cmd: list[str], env: dict[str, str]) -> float:
    """One whole process, run beside its home: ``python -m`` puts the working folder first on sys.path."""
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=Path(env["CLIFS_HOME"]).parent)
    return time.perf_counter() - start


def timed(cmd: list[str], envs: dict[str, dict[str, str]], repeats: int) -> dict[str, float]:
    """Median wall time per side of ``repeats`` runs, the sides alternating, after one untimed run each
    (it warms the disk cache, and the first search after indexing brings the vector file up to the OCR
    pass's commit and saves it)."""
    for env in envs.values():
        run_once(cmd, env)
    times: dict[str, list[float]] = {side: [] for side in envs}
    for _ in range(repeats):
        for side, env in envs.items():
            times[side].append(run_once(cmd, env))
    return {side: statistics.median(t) for side, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--against", type=Path, metavar="CHECKOUT", help="another revision's checkout to compare")
    args = parser.parse_args()
    import open_clip
    from safetensors.torch import save_file

    from devkit.shapes import iter_scenes

    checkouts = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    for checkout in checkouts.values():
        for package in ("clifs", "indexer"):
            compileall.compile_dir(checkout / package, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / f"{args.arch}.safetensors"
        model = open_clip.create_model(args.arch)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        del model
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for i, scene in enumerate(iter_scenes(3, 16, 224)):
            scene.image.save(photos / f"{i}.jpg")
        clifs = [sys.executable, "-m", "clifs.cli.main"]
        envs = {}
        for side, checkout in checkouts.items():
            envs[side] = dict(
                os.environ,
                CLIFS_HOME=str(Path(tmp) / f"home-{side}"),
                CLIFS_MODEL=f"{args.arch}:{weights}",
                PYTHONPATH=os.pathsep.join([str(checkout), os.environ.get("PYTHONPATH", "")]),
            )
            subprocess.run([*clifs, "index", str(photos), "--no-progress"], env=envs[side], check=True, cwd=tmp,
                           capture_output=True)  # fmt: skip
        search = timed([*clifs, "search", "a red circle", "--top", "5"], envs, args.repeats)
        listing = timed([*clifs, "list"], envs, args.repeats)
    for side, checkout in checkouts.items():
        print(
            f"cold `clifs search` with {args.arch} ({checkout}): {search[side]:.2f} s median over {args.repeats} "
            f"(clifs list: {listing[side]:.2f} s)"
        )
    if args.against:
        print(
            f"this / against: search {search['this'] / search['against']:.2f}, list {listing['this'] / listing['against']:.2f}"
        )


if __name__ == "__main__":
    main()
