"""The indexing pipeline in process: model switches re-embed, and each space keeps its own vectors."""

from __future__ import annotations

from clifs.engine.library import Library
from clifs.engine.models.openclip import random_init
from indexer.pipeline import Pipeline
from tests.conftest import write_single_objects


def test_switching_models_re_embeds_instead_of_mixing_spaces(tmp_path, test_encoder):
    photos = write_single_objects(tmp_path / "photos")
    home = tmp_path / "home"
    first = Library(home, encoder=test_encoder)
    assert Pipeline(first).index_folders([str(tmp_path / "photos")]).added == len(photos)
    first.close()

    other = random_init("shapes-vit-tiny")
    second = Library(home, encoder=other)
    assert len(second.vectors) == 0  # nothing of the first model's space leaks in
    report = Pipeline(second).index_folders([str(tmp_path / "photos")])
    assert report.added == len(photos) and other.images_encoded == len(photos)
    assert len(second.vectors) == len(photos)
    assert Pipeline(second).index_folders([str(tmp_path / "photos")]).added == 0  # now unchanged
    assert second.search(text="a red circle", top=3)
    second.close()
