"""Why a file is not a playable video, from a cheap look at its bytes.

OpenCV only says "cannot open"; a person wants to know whether the file is
truncated, audio only, or not a video at all. This reads the first bytes (and,
for MP4/MOV, the box layout and the track handlers) and names the cause.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

_CONTAINER_BOXES = {b"moov", b"trak", b"mdia"}


def describe_unplayable(path: str | Path) -> str:
    """A readable reason for a file OpenCV cannot open as a video."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if head[4:8] == b"ftyp":
        return _iso_media_reason(path)
    if head[:4] == b"RIFF":
        if head[8:12] == b"WAVE":
            return "a WAV audio file, not a video"
        if head[8:12] == b"AVI ":
            return "a corrupt or truncated AVI file"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "a corrupt or truncated Matroska/WebM file (or one with no video track)"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "a corrupt or truncated MPEG file"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "an MP3 audio file, not a video"
    if head[:4] in (b"OggS", b"fLaC"):
        return "an audio file (Ogg/FLAC) with no video stream"
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n":
        return "an image, not a video"
    return "not a video (unrecognised content)"


def _boxes(f, start: int, end: int):
    """(type, payload offset, box end) of the ISO-BMFF boxes in [start, end)."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", f.read(8))
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, pos + size
        pos += size


def _handlers(f, start: int, end: int) -> set[bytes]:
    """Track handler types ('vide', 'soun', ...) under a moov box."""
    found: set[bytes] = set()
    for kind, payload, box_end in _boxes(f, start, end):
        if kind in _CONTAINER_BOXES:
            found |= _handlers(f, payload, box_end)
        elif kind == b"hdlr":
            f.seek(payload + 8)  # version/flags, pre_defined
            found.add(f.read(4))
    return found


def _iso_media_reason(path: str | Path) -> str:
    size = os.path.getsize(path)
    try:
        with open(path, "rb") as f:
            moov = None
            for kind, payload, box_end in _boxes(f, 0, size):
                if box_end > size:
                    return (
                        f"truncated MP4/MOV: the file ends inside its '{kind.decode('latin-1')}' box "
                        f"({size} of {box_end} bytes)"
                    )
                if kind == b"moov":
                    moov = (payload, box_end)
            if moov is None:
                return "an MP4/MOV without its 'moov' index (an unfinished recording or a truncated copy)"
            handlers = _handlers(f, *moov)
    except (OSError, struct.error):
        return "a corrupt MP4/MOV file"
    if b"vide" not in handlers:
        return "audio only: the MP4/MOV has no video track" if b"soun" in handlers else "the MP4/MOV has no video track"
    return "a corrupt MP4/MOV file (its video track cannot be decoded)"
