"""Write clifs/engine/models/imagenet_classes.tsv (the 1000 ImageNet classes with names a person would type)
and imagenet_class_embeddings.npz (their MiniLM embeddings, so the starter model loads in seconds).

The starter model (ConSE) embeds each class by its name, so a class must be named
the way queries are phrased. ImageNet's classes are WordNet 3.0 noun synsets, so
WordNet (Debian's ``wordnet-base``) gives, for each class:

- its synonyms, minus Latin binomials ("Tinca tinca") that no one searches for;
- its direct hypernym ("Samoyed" -> "spitz"), which also separates homonyms
  ("crane" the bird from "crane" the machine);
- the everyday categories above it ("dog", "bird", "car", "food", ...), taken from
  the hand-checked list ``CATEGORIES`` below, so "a dog" reaches every breed.

Run it where ``apt-get download wordnet-base`` works (or pass --wordnet DIR with
data.noun); the output is committed, so clifs itself never needs WordNet. After a
change to how a class reads (``clifs.engine.models.starter.CLASS_TEMPLATE``), refresh the
embeddings alone with --embeddings-only.

    python bench/make_imagenet_classes.py [--wordnet DIR] [--embeddings-only]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import timm
import torch

from clifs.engine.models import starter
from clifs.engine.models.minilm import MiniLM

OUT = starter.CLASSES_FILE

#: WordNet synset offset -> the plain word a person would use for everything under it.
CATEGORIES = {
    "02084071": "dog",
    "02121620": "cat",
    "02127808": "big cat",
    "01503061": "bird",
    "01816887": "parrot",
    "01604330": "bird of prey",
    "01845132": "water bird",
    "02512053": "fish",
    "01482330": "shark",
    "01726692": "snake",
    "01674464": "lizard",
    "01662784": "turtle",
    "01639765": "frog",
    "01629276": "salamander",
    "02159955": "insect",
    "02274259": "butterfly",
    "02164464": "beetle",
    "01772222": "spider",
    "01976957": "crab",
    "01940736": "mollusk",
    "02484322": "monkey",
    "02470325": "ape",
    "02131653": "bear",
    "02114100": "wolf",
    "02118333": "fox",
    "02329401": "rodent",
    "02323902": "rabbit",
    "02395003": "pig",
    "02370806": "hoofed animal",
    "02062744": "whale",
    "01874434": "marsupial",
    "01661091": "reptile",
    "00007846": "person",
    "02958343": "car",
    "04490091": "truck",
    "02924116": "bus",
    "03791235": "motor vehicle",
    "03790512": "motorcycle",
    "02834778": "bicycle",
    "02959942": "train",
    "03684823": "train",
    "04468005": "train",
    "02858304": "boat",
    "04194289": "ship",
    "04530566": "boat",
    "02686568": "aircraft",
    "02913152": "building",
    "03544360": "house",
    "03953416": "church",
    "04202417": "shop",
    "02898711": "bridge",
    "03327234": "fence",
    "07555863": "food",
    "00021265": "food",
    "07557434": "dish",
    "07705931": "fruit",
    "07707451": "vegetable",
    "07881800": "drink",
    "07679356": "bread",
    "07622061": "baked goods",
    "12992868": "mushroom",
    "11669921": "flower",
    "03800933": "musical instrument",
    "03051540": "clothing",
    "03380867": "shoe",
    "03381126": "shoe",
    "03502509": "hat",
    "03405725": "furniture",
    "04161981": "seat",
    "03001627": "chair",
    "03636248": "lamp",
    "04437953": "clock",
    "03082979": "computer",
    "04401088": "phone",
    "04451818": "tool",
    "04565375": "weapon",
    "03467984": "gun",
    "02778669": "ball",
    "02876657": "bottle",
    "03241496": "cup",
    "02773037": "bag",
    "02883344": "box",
    "03621049": "kitchen utensil",
    "03528263": "home appliance",
    "04381994": "tableware",
    "03964744": "toy",
    "04285146": "sports equipment",
    "09287968": "landscape",
    "09366317": "mountain",
    "09433442": "shore",
}

LICENSE = """\
# Derived from WordNet 3.0 (Debian package wordnet-base) by bench/make_imagenet_classes.py.
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
# THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR
# WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO
# REPRESENTATIONS OR WARRANTIES OF MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
# OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS,
# COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS.
# Columns: wnid, names (synonyms, most common first), parent (direct hypernym), categories (everyday words)
"""

#: Latin names among the classes' synonyms whose genus WordNet lacks (checked by hand).
_LATIN_WITHOUT_GENUS = {"Constrictor constrictor", "Grifola frondosa", "Holocanthus tricolor", "Lycaon pictus"}


def _binomial_filter(synsets: dict) -> Callable[[str], bool]:
    """'Tinca tinca', 'Canis lupus tundrarum': a name whose first word is a WordNet genus."""
    genera = {w[len("genus ") :] for words, _ in synsets.values() for w in words if w.startswith("genus ")}
    return lambda name: name in _LATIN_WITHOUT_GENUS or (" " in name and name.split()[0] in genera)


def read_wordnet(data_noun: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset -> (lemmas, hypernym offsets) for every noun synset."""
    synsets = {}
    for line in data_noun.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the license header
            continue
        fields = line.partition("|")[0].split()
        n_words = int(fields[3], 16)
        words = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        i = 4 + 2 * n_words
        n_pointers = int(fields[i])
        pointers = [fields[i + 1 + 4 * j : i + 5 + 4 * j] for j in range(n_pointers)]
        synsets[fields[0]] = (words, [p[1] for p in pointers if p[0] in ("@", "@i")])
    return synsets


def ancestors(synsets: dict, offset: str) -> list[str]:
    """All hypernyms, nearest first (breadth-first over multiple inheritance)."""
    order, queue = [], [offset]
    while queue:
        for h in synsets[queue.pop(0)][1]:
            if h not in order:
                order.append(h)
                queue.append(h)
    return order


def class_rows(synsets: dict) -> list[str]:
    info = Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt"
    is_binomial = _binomial_filter(synsets)
    rows = []
    for wnid in info.read_text().split():
        words, hypernyms = synsets[wnid[1:]]
        names = [words[0]] + [w for w in words[1:] if not is_binomial(w)]
        parent = synsets[hypernyms[0]][0][0] if hypernyms else ""
        cats = []
        for a in ancestors(synsets, wnid[1:]):
            label = CATEGORIES.get(a)
            if label and label not in cats and label not in names:
                cats.append(label)
        rows.append("\t".join([wnid, ", ".join(names), parent, ", ".join(cats)]))
    return rows


def find_data_noun(wordnet: Path | None) -> Path:
    if wordnet:
        return wordnet / "data.noun"
    system = Path("/usr/share/wordnet/data.noun")
    if system.is_file():
        return system
    tmp = Path(tempfile.mkdtemp(prefix="wordnet-"))
    subprocess.run(["apt-get", "download", "wordnet-base"], check=True, cwd=tmp)
    subprocess.run(["dpkg", "-x", str(next(tmp.glob("wordnet-base_*.deb"))), str(tmp / "x")], check=True)
    return tmp / "x" / "usr" / "share" / "wordnet" / "data.noun"


def write_embeddings() -> None:
    """Embed every class's text with MiniLM and store them (float16) with the key the loader checks."""
    text_model = starter.default_text_model()
    classes = starter.read_classes()
    emb = starter.embed_classes(MiniLM(text_model), classes)
    texts = [t for c in classes for t in c.texts()]
    key = starter.embeddings_key(texts, starter.file_sha(text_model / "model.safetensors"))
    np.savez_compressed(starter.EMBEDDINGS_FILE, embeddings=emb.astype(np.float16), key=np.array(key))
    print(f"wrote {starter.EMBEDDINGS_FILE} (key {key})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", type=Path, help="folder holding WordNet 3.0's data.noun")
    parser.add_argument("--embeddings-only", action="store_true", help="keep the class table, redo the embeddings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.embeddings_only:
        rows = class_rows(read_wordnet(find_data_noun(args.wordnet)))
        assert len(rows) == 1000, len(rows)
        OUT.write_text(LICENSE + "\n".join(rows) + "\n", encoding="utf-8")
        uncategorised = sum(1 for r in rows if not r.split("\t")[3])
        print(f"wrote {OUT} ({uncategorised} classes without an everyday category)")
    write_embeddings()


if __name__ == "__main__":
    main()
