"""Actions: one module per command-sized job (deploy, release, promote, ...)."""

from dataclasses import dataclass


@dataclass
class Options:
    """What every action that changes something accepts."""

    dry_run: bool = False
    wait: bool = True
    timeout: float = 900.0
    poll: float = 2.0
