"""Write the state-dict layout (names and shapes) of ImageBind-huge's vision, text and audio towers, as
ImageBind's own code builds it, to tests/data/imagebind_huge_layout.json (the test of
clifs.engine.models.imagebind compares its modules with it). Nothing is allocated: the model is
built on the meta device.

    pip download --no-deps imagebind-unofficial && unzip imagebind_unofficial-*.whl -d /tmp/ib
    pip install einops   # the one import of its model code not already here
    python -m devkit.imagebind_layout --source /tmp/ib

``--source`` is the folder holding the ``imagebind`` package. Its ``__init__`` (which imports
torchaudio and pytorchvideo for data loading) is skipped, and iopath (used only to read the BPE
file) is stubbed.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch

from clifs.engine.models.imagebind import MODALITIES

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "imagebind_huge_layout.json"


def layout(source: Path) -> dict[str, list[int]]:
    package = types.ModuleType("imagebind")
    package.__path__ = [str(source / "imagebind")]
    sys.modules["imagebind"] = package
    if "iopath" not in sys.modules:
        file_io = types.ModuleType("iopath.common.file_io")
        file_io.g_pathmgr = None
        sys.modules.update({"iopath": types.ModuleType("iopath"), "iopath.common": types.ModuleType("iopath.common"),
                            "iopath.common.file_io": file_io})  # fmt: skip
    from imagebind.models.imagebind_model import imagebind_huge

    linspace = torch.linspace  # its drop-path schedule calls .item(), which the meta device cannot
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})
    try:
        with torch.device("meta"):
            model = imagebind_huge(pretrained=False)
    finally:
        torch.linspace = linspace
    return {k: list(v.shape) for k, v in model.state_dict().items() if k.split(".")[1] in MODALITIES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    table = layout(args.source)
    args.out.write_text("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in table.items()) + "\n}\n")
    print(
        f"{len(table)} tensors, {sum(torch.Size(s).numel() for s in table.values()) / 1e6:.1f} M values -> {args.out}"
    )


if __name__ == "__main__":
    main()
