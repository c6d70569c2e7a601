"""clifs against rclip side by side: the same random open_clip weights, the same photos, whole processes.

    python bench/vs_rclip.py [--rclip /tmp/rclip-venv/bin/rclip] [--images 400] [--repeats 3]
                             [--precision auto] [--batch-size 32] [--arch ViT-B-32-256]

rclip (a CLI CLIP photo search on ONNX Runtime) reads visual.onnx / textual.onnx, the BPE vocabulary and
four legal files from its data dir (RCLIP_DATADIR); this script builds that dir from the same random
weights clifs loads (open_clip export, input "input", output "output", as rclip's own converter), so both
tools embed with the same network. Install rclip into its own venv first:

    /root/.pyenv/versions/3.12.1/bin/python -m venv /tmp/rclip-venv && /tmp/rclip-venv/bin/pip install rclip==4.0.8

Photos: half 1920x1080, half 4000x3000 JPEGs (shapes-world scenes upscaled with sensor-like noise),
made once under --photos. clifs's exported towers are made once before timing (as after its first
model load); every timed run starts from a fresh home / data dir. Per repeat, alternating tools:
  first index      clifs index --no-ocr PHOTOS     | rclip QUERY in PHOTOS (indexes, then searches)
  unchanged        the same again                  | the same again
  cold search      clifs search QUERY              | rclip -n QUERY (no indexing)
  one new photo    clifs index of a folder with one photo, whole process; and the time from the process's
                   start (/proc) to its first batch reaching the model, in a fresh home
rclip cannot index without searching, so its indexing time is also given less its cold search; clifs runs
without its OCR pass (--no-ocr), which rclip does not have.
Medians over repeats; peak RSS of each process (ru_maxrss). Check `uptime` first: nothing else may run.
"""

from __future__ import annotations

import argparse
import gzip
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
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
QUERY = "a red circle on a green background"
RCLIP_SUBDIR = "ViT-B-32-256-datacomp_s34b_b86k"
#: `clifs index` in a process that notes when its first batch reaches the model (seconds since it started).
FIRST_BATCH = """
import os, sys, time
started = time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - int(open("/proc/self/stat").read().split()[21]) / os.sysconf("SC_CLK_TCK"))
from clifs.engine.models import base
encode = base.Encoder.encode_images
seen = []
def noted(self, batch):
    seen.append(time.time() - started) if not seen else None
    return encode(self, batch)
base.Encoder.encode_images = noted
from clifs.cli.main import main
main(["index", "--no-ocr", "--no-progress", sys.argv[1]])
print(seen[0], file=sys.stderr)
"""


def measure_rss(cmd: list[str], env: dict, cwd: Path | None = None) -> tuple[float, float, str]:
    """Run in a wrapper process that reports its own child's peak RSS (RUSAGE_CHILDREN is a max over all)."""
    wrapper = (
        "import resource, subprocess, sys, time, json; t = time.perf_counter(); "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "w = time.perf_counter() - t; "
        "print(json.dumps([p.returncode, w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, "
        "p.stdout[-4000:], p.stderr[-4000:]]))"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, cwd=cwd, capture_output=True, text=True)
    rc, wall, rss, out, err = json.loads(done.stdout)
    if rc != 0:
        raise RuntimeError(f"{cmd} failed ({rc}): {err[-2000:]}")
    return wall, rss, out


def make_photos(folder: Path, count: int) -> Path:
    from bench.index_throughput import make_jpegs

    marker = folder / f".made-{count}"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    make_jpegs(folder, count // 2, (1920, 1080))
    make_jpegs(folder, count - count // 2, (4000, 3000))
    marker.write_text("")
    return folder


def make_weights(work: Path, arch: str) -> tuple[str, object]:
    import open_clip
    import torch
    from safetensors.torch import save_file

    from clifs.engine.models.openclip import load

    torch.manual_seed(0)
    weights = work / f"{arch}.safetensors"
    model = open_clip.create_model(arch, pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    spec = f"{arch}:{weights}"
    return spec, load(spec, device="cpu")


def build_rclip_datadir(folder: Path, encoder) -> None:
    """rclip's model files from ``encoder``'s torch model: its own converter's interface (opset 18, input
    "input", output "output", dynamic batch; the text tower over the full 77-token context)."""
    import open_clip
    import torch

    from clifs.engine.models.onnx_export import _export
    from clifs.engine.models.openclip_onnx import FullContextText, ImageTower

    model_dir = folder / RCLIP_SUBDIR
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    size = encoder.model.visual.image_size
    size = size[0] if isinstance(size, tuple | list) else size
    _export(ImageTower(encoder.model), (torch.zeros(2, 3, size, size),), model_dir / "visual.onnx", ["input"],
            {"input": {0: "batch"}})  # fmt: skip
    _export(FullContextText(encoder.model), (encoder.tokenizer(["a dog", "two cats"]),), model_dir / "textual.onnx",
            ["input"], {"input": {0: "batch"}})  # fmt: skip
    for onnx_file in model_dir.glob("*.onnx"):  # rclip names the output "output"
        import onnx

        graph = onnx.load(str(onnx_file))
        for node in graph.graph.node:
            node.output[:] = ["output" if o == "embedding" else o for o in node.output]
        graph.graph.output[0].name = "output"
        onnx.save(graph, str(onnx_file))
    vocab = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    shutil.copy(vocab, folder / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz")
    for name in ("LICENSE", "OPENAI-CLIP-MIT.txt", "README.md", "THIRD_PARTY_NOTICES.md"):
        (folder / name).write_text("random weights for a benchmark\n")
    assert gzip.open(folder / "tokenizer" / "bpe_simple_vocab_16e6.txt.gz").read(10)


def check_same_space(rclip_dir: Path, spec: str, home: Path, photos: Path) -> float:
    """Cosine between rclip's and clifs's text embedding of QUERY, from the same weights (fp32)."""
    import onnxruntime as ort
    from open_clip.tokenizer import SimpleTokenizer

    session = ort.InferenceSession(str(rclip_dir / RCLIP_SUBDIR / "textual.onnx"), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"input": SimpleTokenizer()([QUERY]).numpy()})[0][0]
    from clifs.engine.config import Settings
    from clifs.engine.library import Library

    settings = Settings(home=home, model=spec, precision="fp32")
    ours = Library(settings).model.encode_texts([QUERY])[0]
    return float(ours @ theirs / np.linalg.norm(theirs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rclip", default="/tmp/rclip-venv/bin/rclip")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--arch", default="ViT-B-32-256")
    parser.add_argument("--photos", type=Path, default=Path(tempfile.gettempdir()) / "clifs-bench-photos")
    parser.add_argument("--skip-rclip", action="store_true")
    args = parser.parse_args()

    photos = make_photos(args.photos / f"n{args.images}", args.images)
    one = args.photos / "one"
    if not one.exists():
        one.mkdir(parents=True)
        shutil.copy(sorted(photos.glob("4000x3000_*.jpg"))[0], one / "new.jpg")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec, encoder = make_weights(tmp, args.arch)
        # clifs's exported towers, made once (as its first model load does), copied into every fresh home
        from clifs.engine.models import model_cache

        models = tmp / "exported"
        t = time.perf_counter()
        assert model_cache.store(models, spec, encoder)
        print(f"clifs export of {args.arch} (once per model): {time.perf_counter() - t:.0f} s", flush=True)
        rclip_models = tmp / "rclip-models"
        if not args.skip_rclip:
            build_rclip_datadir(rclip_models, encoder)
            cos_home = tmp / "cos-home"
            shutil.copytree(models, cos_home / "cache")
            print(
                f"same space: cosine(clifs text fp32, rclip text) = {check_same_space(rclip_models, spec, cos_home, photos):.5f}"
            )
        del encoder
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIFS_", "RCLIP_"))}
        results: dict[str, list] = {}

        def add(key: str, value: float) -> None:
            results.setdefault(key, []).append(value)

        for r in range(args.repeats):
            home = tmp / f"clifs-{r}"
            shutil.copytree(models, home / "cache")
            (home / "config.toml").write_text(f'precision = "{args.precision}"\nbatch_size = {args.batch_size}\n')
            clifs_env = dict(env, CLIFS_HOME=str(home), CLIFS_MODEL=spec)
            clifs = [sys.executable, "-m", "clifs.cli.main"]
            wall, rss, out = measure_rss(
                [*clifs, "index", "--no-ocr", "--no-progress", "--json", str(photos)], clifs_env
            )
            assert json.loads(out)[0]["indexed"] == args.images, out
            add("clifs first index s", wall), add("clifs first index RSS GiB", rss)
            wall, rss, out = measure_rss(
                [*clifs, "index", "--no-ocr", "--no-progress", "--json", str(photos)], clifs_env
            )
            assert json.loads(out)[0]["unchanged"] == args.images, out
            add("clifs unchanged s", wall), add("clifs unchanged RSS GiB", rss)
            wall, rss, _ = measure_rss([*clifs, "search", QUERY, "--top", "5"], clifs_env)
            add("clifs cold search s", wall), add("clifs search RSS GiB", rss)
            wall, _, out = measure_rss([*clifs, "index", "--no-ocr", "--no-progress", "--json", str(one)], clifs_env)
            add("clifs one new photo s", wall)
            shutil.rmtree(home / "vectors", ignore_errors=True)
            (home / "catalog.sqlite3").unlink()
            for wal in home.glob("catalog.sqlite3-*"):
                wal.unlink()
            first = subprocess.run([sys.executable, "-c", FIRST_BATCH, str(one)], env=clifs_env, capture_output=True,
                                   text=True, check=True)  # fmt: skip
            add("clifs start-up before the first batch s", float(first.stderr.strip().splitlines()[-1]))

            if args.skip_rclip:
                continue
            datadir = tmp / f"rclip-{r}"
            shutil.copytree(rclip_models, datadir)
            rclip_env = dict(env, RCLIP_DATADIR=str(datadir))
            rclip = [args.rclip, "-f", "-t", "5"]
            wall, rss, _ = measure_rss([*rclip, QUERY], rclip_env, cwd=photos)
            add("rclip first index+query s", wall), add("rclip first index RSS GiB", rss)
            wall, rss, _ = measure_rss([*rclip, QUERY], rclip_env, cwd=photos)
            add("rclip unchanged s", wall), add("rclip unchanged RSS GiB", rss)
            wall, rss, _ = measure_rss([*rclip, "-n", QUERY], rclip_env, cwd=photos)
            add("rclip cold search s", wall), add("rclip search RSS GiB", rss)
            print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in results.items()), flush=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    med["clifs first index img/s"] = args.images / med["clifs first index s"]
    if not args.skip_rclip:
        rclip_index = statistics.median(
            a - b for a, b in zip(results["rclip first index+query s"], results["rclip cold search s"])
        )
        med["rclip first index img/s (index+query)"] = args.images / med["rclip first index+query s"]
        med["rclip first index img/s (less its cold search)"] = args.images / rclip_index
        med["clifs/rclip img/s (index+query)"] = (
            med["clifs first index img/s"] / med["rclip first index img/s (index+query)"]
        )
        med["clifs/rclip img/s (less search)"] = (
            med["clifs first index img/s"] / med["rclip first index img/s (less its cold search)"]
        )
    print(
        f"\nmedians over {args.repeats} ({args.arch}, {args.images} JPEGs, precision {args.precision}, batch {args.batch_size}):"
    )
    for k, v in med.items():
        print(f"  {k:48s} {v:8.3f}")
    OUT.mkdir(exist_ok=True)
    name = f"vs_rclip_{args.precision}_b{args.batch_size}.json"
    (OUT / name).write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": results,
                                        "medians": med}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
