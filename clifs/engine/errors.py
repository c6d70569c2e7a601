"""Errors a person sees as a clear message (exit code 2 in the CLI). No heavy imports here:
every command imports this module, including the ones that never load a model."""


class ModelUnavailable(Exception):
    """The model's weights cannot be found or fetched. The message says what is missing and how to supply it."""


class UsageError(Exception):
    """Wrong arguments that argparse cannot catch."""
