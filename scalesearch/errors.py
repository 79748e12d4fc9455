"""User-facing errors: the CLI prints their message as one sentence and exits with status 2."""


class BadInput(ValueError):
    """Input that the user can fix: the message names the bad value and what is accepted."""
