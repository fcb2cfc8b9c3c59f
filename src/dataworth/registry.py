"""One entry of a registry (methods, estimators, commands): where the class lives and what it is.

The entry holds the one-line summary and the reference, so that listing what exists imports no
implementation: ``dataworth methods`` answers without loading scikit-learn or scipy.

Examples
--------
>>> entry = Entry("loo:LeaveOneOut", "Leave-one-out.", "Cook 1977")
>>> entry.load("dataworth.methods").__name__
'LeaveOneOut'
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

__all__ = ["Entry"]


@dataclass(frozen=True)
class Entry:
    """A registered class: ``target`` is ``"module:Class"`` relative to its package.

    ``semivalues`` is for estimators: the semivalues an estimator supports (None: any).
    """

    target: str
    summary: str
    reference: str
    semivalues: frozenset[str] | None = None

    def load(self, package: str) -> Any:
        """The registered class, imported from ``package``."""
        module, name = self.target.split(":")
        return getattr(import_module(f"{package}.{module}"), name)
