"""Utilities: the score of a model trained on a subset of players (rows or groups)."""

from dataworth.utility.base import UtilityBase
from dataworth.utility.batched import BatchedUtility
from dataworth.utility.model import ModelUtility

__all__ = ["BatchedUtility", "ModelUtility", "UtilityBase"]
