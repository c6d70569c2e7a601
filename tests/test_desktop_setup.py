"""What a person sees when the desktop is not ready (issue 13): `clifs gui` names the missing X11 libraries
and their packages instead of Qt's generic plugin abort."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clifs.cli import gui as gui_cli
from clifs.cli.main import main
from tests.conftest import clifs_env


@pytest.fixture
def x11(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":5")
    for name in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")


def test_missing_xcb_libraries_are_named_with_their_packages(x11, monkeypatch, capsys):
    monkeypatch.setattr(gui_cli, "missing_xcb_libraries", lambda: ["libxcb-icccm.so.4", "libxcb-cursor.so.0"])
    assert main(["gui"]) == 2
    err = capsys.readouterr().err
    assert "Qt's X11 (xcb) platform plugin cannot load" in err
    assert "libxcb-icccm.so.4, libxcb-cursor.so.0" in err
    assert "sudo apt-get install libxcb-icccm4 libxcb-cursor0" in err
    assert err.count("\n") == 1  # one line


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"DISPLAY": ":0"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland"}, False),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
    ],
)
def test_the_check_runs_only_where_qt_would_use_xcb(monkeypatch, env, expected):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert gui_cli._uses_xcb() is expected


def test_the_real_check_on_this_machine(tmp_path):
    """This machine's PySide6 wheel and system libraries, checked for real (ldd on Qt's xcb library)."""
    missing = gui_cli.missing_xcb_libraries()
    assert all(name.startswith("lib") and ".so" in name for name in missing)
    if not missing:
        pytest.skip("this machine has every library Qt's xcb plugin needs")
    env = clifs_env(tmp_path / "home", DISPLAY=":5", QT_QPA_PLATFORM="", WAYLAND_DISPLAY="", XDG_SESSION_TYPE="")
    proc = subprocess.run([sys.executable, "-m", "clifs.cli.main", "gui"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert all(name in proc.stderr for name in missing)
    assert "could not load the Qt platform plugin" not in proc.stderr.lower()
