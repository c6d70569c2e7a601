"""Settings: where clifs keeps its data, and the user's choices from config.toml."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import tomllib

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".*",  # hidden files and folders, .git included
    "node_modules",
    "@eaDir",
    "$RECYCLE.BIN",
    "System Volume Information",
    "._*",
    "__pycache__",
)


#: Settings that take one of a few words.
_CHOICES = {"runtime": ("auto", "onnx", "torch"), "precision": ("auto", "fp32", "int8")}


class ConfigError(Exception):
    """The config file is unreadable or holds a wrong value."""


def _default_home() -> Path:
    env = os.environ.get("CLIFS_HOME")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("clifs", appauthor=False))


@dataclass
class Settings:
    """Everything a run needs to know. ``home`` holds the catalog, the vector indexes and the thumbnail cache.

    With ``CLIFS_HOME`` set, the config file lives there too; otherwise in the platform's config dir.
    """

    home: Path = field(default_factory=_default_home)
    model: str | None = None  # None: the default CLIP model, with the offline fallback
    device: str = "auto"
    excludes: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDES))
    batch_size: int = 32
    decode_workers: int = 2
    torch_threads: int = 0  # 0: let torch decide
    #: What runs the model: "auto" (ONNX Runtime on a CPU, torch on a GPU), "onnx" or "torch".
    runtime: str = "auto"
    #: ONNX Runtime's precision: "auto" (int8 for the towers where it keeps quality), "fp32" or "int8".
    precision: str = "auto"
    #: ONNX Runtime's intra-op threads (and torch's when torch_threads is 0); 0: one per core.
    threads: int = 0
    max_image_pixels: int = 120_000_000
    #: Read the words in pictures (the OCR pass, after the embedding pass); false: never.
    ocr: bool = True
    ocr_max_side: int = 960  # the long side, in pixels, a picture is shrunk to before text detection
    ocr_threads: int = 0  # ONNX Runtime threads for OCR; 0: the cores, up to 4

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.sqlite3"

    @property
    def vectors_dir(self) -> Path:
        return self.home / "vectors"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def config_path(self) -> Path:
        if os.environ.get("CLIFS_HOME"):
            return self.home / "config.toml"
        import platformdirs

        return Path(platformdirs.user_config_dir("clifs", appauthor=False)) / "config.toml"

    @classmethod
    def load(cls, home: Path | str | None = None) -> Settings:
        """Defaults, then config.toml, then the environment (CLIFS_MODEL)."""
        settings = cls(home=Path(home).expanduser().resolve()) if home else cls()
        path = settings.config_path
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"Cannot read config file {path}: {exc}") from None
            known = {f.name: f for f in fields(cls) if f.name != "home"}
            for key, value in data.items():
                if key not in known:
                    raise ConfigError(f"Unknown setting {key!r} in {path}; known: {', '.join(sorted(known))}.")
                setattr(settings, key, value)
        if os.environ.get("CLIFS_MODEL"):
            settings.model = os.environ["CLIFS_MODEL"]
        for key, allowed in _CHOICES.items():
            if getattr(settings, key) not in allowed:
                raise ConfigError(
                    f"Setting {key!r} in {path} is {getattr(settings, key)!r}; one of: {', '.join(allowed)}."
                )
        if settings.home.exists() and not settings.home.is_dir():
            raise ConfigError(f"the clifs home {settings.home} is a file, not a folder: set CLIFS_HOME to a folder")
        try:
            settings.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the clifs home {settings.home}: {exc.strerror or exc}") from None
        return settings
