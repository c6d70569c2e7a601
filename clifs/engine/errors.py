"""Errors a person sees as a clear message (exit code 2 in the CLI). No heavy imports here:
every command imports this module, including the ones that never load a model."""


class ModelUnavailable(Exception):
    """The model's weights cannot be found or fetched. The message says what is missing and how to supply it."""


class UsageError(Exception):
    """Wrong arguments that argparse cannot catch."""


class MediaError(Exception):
    """A file that cannot be indexed; the message is the reason shown to the user. (Here, not in
    ``clifs.engine.media``, so a text search can catch it without importing Pillow and libheif.)"""


class CatalogError(Exception):
    """The catalog or its home cannot be used (damaged, written by a newer clifs, read-only, not a folder).

    The message is one line: what is wrong and what to do about it."""
