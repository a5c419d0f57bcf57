"""Errors meant for a person: one line that says what is wrong and what to do."""


class ShipError(Exception):
    """A failure the user can act on. ``str(err)`` is a single actionable line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
