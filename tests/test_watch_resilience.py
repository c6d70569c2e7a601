"""The live indexer when the ground moves: a watched folder that vanishes and comes back, and a full disk.

Real parts only: the real watchdog observer, real folders, SQLite and FAISS, the test model, and
real small tmpfs mounts (a drive that is unmounted and mounted again; a CLIFS_HOME that fills up).
The tests that mount need root; where mounting is refused they are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import indexer.service as service_module
from clifs.cli.main import main as clifs_main
from clifs.engine.library import Library
from indexer.disk_space import is_disk_full
from indexer.service import IndexerService
from indexer.status import IndexerStatus, read_status_file
from tests.indexer_helpers import disagreements, item_ids_by_path, wait_agreement, wait_until, write_image

CONFIG = "batch_size = 8\ndecode_workers = 1\ntorch_threads = 1\n"


def _library(home: Path, encoder) -> Library:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(CONFIG)
    return Library(home, encoder=encoder)


class Services:
    """Starts services on the test home; ``close`` stops one and closes its library (before a tmpfs
    holding it is unmounted); every one left is closed at the end, however the test ends."""

    def __init__(self, home: Path, encoder):
        self.home, self.encoder = home, encoder
        self.started: list[IndexerService] = []

    def __call__(self, folders: list[Path], debounce: float = 0.3, library: Library | None = None) -> IndexerService:
        service = IndexerService(library or _library(self.home, self.encoder), debounce_seconds=debounce)
        for folder in folders:
            service.add_folder(str(folder))
        service.start()
        self.started.append(service)
        return service

    def close(self, service: IndexerService) -> None:
        self.started.remove(service)
        service.stop(timeout=30)
        service.library.close()


@pytest.fixture
def service_factory(clifs_home, test_encoder):
    services = Services(clifs_home, test_encoder)
    yield services
    for service in list(services.started):
        services.close(service)


class Tmpfs:
    """A real tmpfs of ``size_kb`` on ``path`` (mount needs root: skipped with the reason when refused)."""

    def __init__(self, path: Path, size_kb: int):
        self.path = path
        self.size_kb = size_kb
        self.mounted = False

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_kb}k", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {(proc.stderr or proc.stdout).strip()}")
        self.mounted = True

    def unmount(self) -> None:
        """Unmount; a file the indexer has open for a moment makes it busy, so retry until a deadline."""
        deadline = time.monotonic() + 20
        while True:
            proc = subprocess.run(["umount", str(self.path)], capture_output=True, text=True)
            if proc.returncode == 0:
                self.mounted = False
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"cannot unmount {self.path}: {proc.stderr.strip()}")
            time.sleep(0.1)


@contextlib.contextmanager
def tmpfs(path: Path, size_kb: int) -> Iterator[Tmpfs]:
    fs = Tmpfs(path, size_kb)
    fs.mount()
    try:
        yield fs
    finally:
        if fs.mounted:
            try:
                fs.unmount()
            except AssertionError:
                subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path) -> int:
    """Write ``path`` until the disk holding it is full (to the last byte); returns its size."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written += f.write(block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return written


def _truncate_wal(catalog: Path) -> bool:
    """Checkpoint the catalog's WAL into its main file and empty it; False while a reader holds it."""
    con = sqlite3.connect(catalog)
    try:
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        con.close()
    wal = catalog.with_name(catalog.name + "-wal")
    return busy == 0 and (not wal.exists() or wal.stat().st_size == 0)


def _status_text(capsys) -> str:
    capsys.readouterr()
    assert clifs_main(["status"]) == 0
    return capsys.readouterr().out


def _status_json(capsys) -> dict:
    capsys.readouterr()
    assert clifs_main(["status", "--json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    return status


def _rows(library: Library) -> dict[str, tuple[str, int]]:
    return {f.path: (f.status, n) for f, n in library.catalog.list_files()}


def _missing_line(path: Path) -> str:
    return f"folder missing: {path} (results kept from before)"


def _wait_missing(service: IndexerService, folders: list[Path], how: str, capsys, timeout: float = 15) -> None:
    """Until the service, and its status file, say ``folders`` are missing; prints how long that took."""
    want = [str(f) for f in folders]
    home = service.library.settings.home
    seconds = wait_until(
        lambda: (
            service.status().missing_folders == want and (read_status_file(home) or {}).get("missing_folders") == want
        ),
        timeout,
        lambda: (service.status(), read_status_file(home)),
    )
    with capsys.disabled():
        print(f"{how}: said missing after {seconds:.2f} s")


# -- a watched folder that vanishes and comes back --------------------------------------------------------
def test_folder_deleted_then_made_again_with_new_files_is_indexed_without_a_restart(
    tmp_path, service_factory, test_encoder, capsys
):
    photos = tmp_path / "photos"
    write_image(photos / "old1.png", seed=1)
    write_image(photos / "old2.png", seed=2)
    service = service_factory([photos])
    library, home = service.library, service.library.settings.home
    wait_agreement(home, photos, test_encoder, timeout=60)
    before = _rows(library)

    shutil.rmtree(photos)
    _wait_missing(service, [photos], "deleted", capsys)
    assert service.wait_idle(30)
    assert _rows(library) == before  # gone from disk, not deleted from the catalog
    assert _missing_line(photos) in _status_text(capsys)
    status = _status_json(capsys)
    assert status["missing_folders"] == [str(photos)] and status["state"] == "watching"
    assert any("folder not found" in reason for _, reason in service.status().recent_errors)

    made_again = time.monotonic()
    write_image(photos / "new1.png", seed=3)  # makes the folder again
    write_image(photos / "sub" / "new2.png", seed=4)
    seconds = wait_agreement(home, photos, test_encoder, timeout=60)
    with capsys.disabled():
        print(
            f"deleted folder made again: agreement {time.monotonic() - made_again:.2f} s after ({seconds:.2f} s polling)"
        )
    assert set(_rows(library)) == {str(photos / "new1.png"), str(photos / "sub" / "new2.png")}
    wait_until(lambda: service.status().missing_folders == [], 10)
    assert _missing_line(photos) not in _status_text(capsys)

    write_image(photos / "later.png", seed=5)  # the new folder is watched, not only walked once
    wait_agreement(home, photos, test_encoder, timeout=30)
    status = service.status()
    assert status.state == "watching" and status.failed == 0 and service._thread.is_alive()


def test_folder_replaced_at_once_under_the_same_path_is_watched_afresh(tmp_path, service_factory, test_encoder):
    """No deletion event (the old folder is renamed aside, a new one made at its path): the poll sees
    another inode under the path, watches it and walks it."""
    photos, aside = tmp_path / "photos", tmp_path / "aside"
    write_image(photos / "a.png", seed=1)
    service = service_factory([photos])
    home = service.library.settings.home
    wait_agreement(home, photos, test_encoder, timeout=60)

    photos.rename(aside)
    photos.mkdir()
    write_image(photos / "b.png", seed=2)
    write_image(aside / "not-watched.png", seed=3)  # the old watch follows this folder until the poll
    seconds = wait_agreement(home, photos, test_encoder, timeout=30)
    print(f"replaced under the same path: agreement after {seconds:.2f} s")
    write_image(photos / "c.png", seed=4)
    wait_agreement(home, photos, test_encoder, timeout=30)
    assert set(_rows(service.library)) == {str(photos / "b.png"), str(photos / "c.png")}
    assert service.status().missing_folders == [] and service.status().failed == 0


def test_folder_renamed_away_is_missing_and_found_again_when_renamed_back(
    tmp_path, service_factory, test_encoder, capsys
):
    photos, away = tmp_path / "photos", tmp_path / "away"
    write_image(photos / "a.png", seed=1)
    write_image(photos / "b.png", seed=2)
    service = service_factory([photos])
    library, home = service.library, service.library.settings.home
    wait_agreement(home, photos, test_encoder, timeout=60)
    ids = item_ids_by_path(library)

    photos.rename(away)
    _wait_missing(service, [photos], "renamed away", capsys)
    write_image(away / "while-away.png", seed=3)
    (away / "b.png").unlink()
    assert service.wait_idle(30)
    assert item_ids_by_path(library) == ids  # results kept from before, as they were
    assert _missing_line(photos) in _status_text(capsys)

    encoded = test_encoder.images_encoded
    away.rename(photos)
    seconds = wait_agreement(home, photos, test_encoder, timeout=30)
    with capsys.disabled():
        print(f"renamed back: agreement after {seconds:.2f} s")
    wait_until(lambda: service.status().missing_folders == [], 10)
    after = item_ids_by_path(library)
    assert set(after) == {str(photos / "a.png"), str(photos / "while-away.png")}
    assert after[str(photos / "a.png")] == ids[str(photos / "a.png")]  # unchanged: not read again
    assert test_encoder.images_encoded - encoded == 1


def test_drive_unmounted_and_mounted_again(tmp_path, service_factory, test_encoder, capsys):
    """A tmpfs mounted on the watched folder: unmounted, the path is an empty mount point (not a
    folder whose files were deleted); mounted again, it is watched and walked."""
    drive = tmp_path / "drive"
    with tmpfs(drive, 4096) as fs:
        write_image(drive / "a.png", seed=1)
        write_image(drive / "b.png", seed=2)
        service = service_factory([drive])
        library, home = service.library, service.library.settings.home
        wait_agreement(home, drive, test_encoder, timeout=60)
        before = _rows(library)

        fs.unmount()
        assert drive.is_dir() and not os.listdir(drive)
        _wait_missing(service, [drive], "unmounted", capsys)
        assert service.wait_idle(30)
        assert _rows(library) == before
        assert _missing_line(drive) in _status_text(capsys)
        assert any("mount point" in reason for _, reason in service.status().recent_errors)

        fs.mount()  # a fresh tmpfs: what it holds now is what is on the drive
        write_image(drive / "a.png", seed=1)
        write_image(drive / "c.png", seed=3)
        seconds = wait_agreement(home, drive, test_encoder, timeout=60)
        with capsys.disabled():
            print(f"remounted drive: agreement after {seconds:.2f} s")
        assert set(_rows(library)) == {str(drive / "a.png"), str(drive / "c.png")}
        wait_until(lambda: service.status().missing_folders == [], 10)
        write_image(drive / "d.png", seed=4)  # and watched
        wait_agreement(home, drive, test_encoder, timeout=30)
        service_factory.close(service)  # before the tmpfs goes
    assert service.status().failed == 0


# -- a full disk ------------------------------------------------------------------------------------------
@pytest.fixture
def quick_disk_retries(monkeypatch):
    """Look at the free space often and retry soon, so a test sees several failed retries in seconds."""
    monkeypatch.setattr(service_module, "DISK_POLL_SECONDS", 0.2)
    monkeypatch.setattr(service_module, "DISK_RETRY_SECONDS", 1.0)


def test_full_disk_pauses_writing_and_resumes_when_space_returns(
    tmp_path, clifs_home, service_factory, test_encoder, quick_disk_retries, capsys
):
    photos = tmp_path / "photos"
    for i in range(4):
        write_image(photos / f"first{i}.png", seed=i)
    with tmpfs(clifs_home, 8192):
        service = service_factory([photos])
        library = service.library
        wait_agreement(clifs_home, photos, test_encoder, timeout=60)
        assert service.wait_idle(30)

        # An empty WAL (as after a clean exit), so the next commit needs new blocks: SQLite otherwise
        # writes a commit over WAL space it already has, full disk or not.
        wait_until(lambda: _truncate_wal(library.settings.catalog_path), 30)
        ballast = fill(clifs_home / "ballast")
        assert shutil.disk_usage(clifs_home).free == 0
        encoded = test_encoder.images_encoded
        for i in range(20):
            write_image(photos / f"new{i:02d}.png", seed=100 + i)
        wait_until(lambda: service.status().disk_full, 60, service.status)
        state = service.status().state
        assert state.startswith("disk full: waiting for space (") and state.endswith(" MB free)"), state
        assert service._thread.is_alive()
        # Retries fail again (each encodes a batch that cannot be committed) and the thread lives on.
        wait_until(lambda: test_encoder.images_encoded - encoded >= 3 * 8, 60)
        wait_until(lambda: service.status().disk_full, 10, service.status)  # between two retries
        assert service._thread.is_alive()
        # Said to other processes too, though the home is full.
        wait_until(lambda: str((read_status_file(clifs_home) or {}).get("state")).startswith("disk full"), 10)
        text = _status_text(capsys)
        assert "disk full: waiting for space" in text and "nothing is lost" in text, text
        assert _status_json(capsys)["state"].startswith("disk full")
        assert any("is full" in reason for _, reason in service.status().recent_errors)
        rows = _rows(library)
        assert len(rows) < 24 and all(r == ("ok", 1) for r in rows.values())  # waiting, nothing half-written
        assert service.status().failed == 0 and library.catalog.list_files(failed_only=True) == []

        (clifs_home / "ballast").unlink()
        freed = time.monotonic()
        seconds = wait_agreement(clifs_home, photos, test_encoder, timeout=60)
        with capsys.disabled():
            print(
                f"disk full with {ballast / 1e6:.1f} MB of ballast; every file indexed once "
                f"{time.monotonic() - freed:.2f} s after it went ({seconds:.2f} s polling)"
            )
        rows = _rows(library)
        assert len(rows) == 24 and all(r == ("ok", 1) for r in rows.values())
        assert len(library.vectors) == len(library.catalog.item_ids_matching())
        wait_until(lambda: service.status().state == "watching", 30, service.status)
        assert service.status().failed == 0
        service_factory.close(service)  # before its tmpfs goes
        assert not list(clifs_home.rglob("*.tmp"))  # no half-written temp left holding space
        assert not disagreements(clifs_home, photos, test_encoder)


def test_service_started_on_a_full_disk_waits_then_catches_up(
    tmp_path, clifs_home, service_factory, test_encoder, quick_disk_retries
):
    """The service starts on a full disk, with its vector file to rebuild and save and a file added
    while it was closed: it waits for space instead of dying, then indexes what changed meanwhile.
    The library is opened while there is space, as the window opens it before it starts the service
    (opening a closed catalog on a full disk fails in SQLite itself: it cannot make its -wal and -shm)."""
    photos = tmp_path / "photos"
    for i in range(3):
        write_image(photos / f"{i}.png", seed=i)
    with tmpfs(clifs_home, 8192):
        first = service_factory([photos])
        wait_agreement(clifs_home, photos, test_encoder, timeout=60)
        service_factory.close(first)
        for saved in (clifs_home / "vectors").iterdir():
            saved.unlink()
        write_image(photos / "meanwhile.png", seed=10)
        library = Library(clifs_home, encoder=test_encoder)
        fill(clifs_home / "ballast")

        service = service_factory([], library=library)
        wait_until(lambda: service.status().disk_full, 60, service.status)
        assert service._thread.is_alive()
        (clifs_home / "ballast").unlink()
        wait_agreement(clifs_home, photos, test_encoder, timeout=60)
        wait_until(lambda: service.status().state == "watching", 30, service.status)
        for made in (clifs_home / "vectors").iterdir():  # the file the agreement check's library saved
            made.unlink()
        service_factory.close(service)  # before its tmpfs goes
        assert [p.suffix for p in (clifs_home / "vectors").iterdir()] == [".faiss"]  # saved on stopping
    assert service.status().failed == 0


def test_what_counts_as_a_full_disk(tmp_path):
    """SQLite's error through SQLAlchemy, and ENOSPC from a write, both real."""
    import sqlalchemy.exc

    from clifs.engine.catalog import Catalog

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    with tmpfs(tmp_path / "small", 512):
        catalog = Catalog(tmp_path / "small" / "catalog.sqlite3")
        try:
            fill(tmp_path / "small" / "ballast")
            with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
                for i in range(100):
                    catalog.add_folder(f"/folder/{i}")
            assert is_disk_full(caught.value), caught.value
        finally:
            catalog.close()
    locked = sqlalchemy.exc.OperationalError("UPDATE", {}, Exception("database is locked"))
    assert not is_disk_full(locked)


# -- the window -------------------------------------------------------------------------------------------
def test_status_panel_shows_a_missing_folder_and_a_full_disk():
    from PySide6.QtWidgets import QApplication

    from gui.status import StatusPanel

    _app = QApplication.instance() or QApplication([])
    panel = StatusPanel()
    panel.set_indexer(IndexerStatus("watching", missing_folders=["/media/usb/photos"]))
    assert not panel.missing_label.isHidden()
    assert panel.missing_label.text() == "Folder missing: /media/usb/photos (results kept from before)"
    panel.set_indexer(IndexerStatus("disk full: waiting for space (0.0 MB free)", queued=20))
    assert panel.missing_label.isHidden()
    assert not panel.rate_label.isHidden()
    assert panel.rate_label.text() == "Disk full: waiting for space (0.0 MB free)"
    panel.set_indexer(IndexerStatus("watching"))
    assert panel.rate_label.isHidden()
