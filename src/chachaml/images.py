"""Images as PNG artifacts: ``log_image(name, image)`` for a numpy array or a PIL image.

>>> chachaml.log_image("samples/digit.png", array)      # doctest: +SKIP  (HxW, HxWx3, HxWx4)

The PNG encoder is written with the stdlib (``chachaml._png``: ``zlib`` + ``struct``), so logging
a numpy array needs no Pillow; a PIL image is saved by Pillow itself. Stored with content type
``image/png``, so the run page previews it (SPEC section 9.3). The verb delegates to the
``Client``.
"""

from __future__ import annotations

from typing import Any

from chachaml import context
from chachaml._png import encode_png
from chachaml.entities import Artifact
from chachaml.rules import check_artifact_name

__all__ = ["encode_png", "log_image"]


def log_image(name: str, image: Any, *, overwrite: bool = False, run: Any = None) -> Artifact:
    """Store an image as the PNG artifact ``name`` of the current run (or ``run=``).

    Args:
        name: the artifact name, e.g. ``"samples/epoch-3.png"`` (same rules as ``log_artifact``).
        image: a numpy array of shape (H, W) (greyscale), (H, W, 3) (RGB) or (H, W, 4) (RGBA),
            of ``uint8`` (or integers in 0..255, or bools) or of floats in [0, 1]; or a PIL image.
        overwrite: replace an artifact of that name that holds other bytes.

    Returns:
        the stored ``Artifact`` (content type ``image/png``).

    Raises:
        InvalidValueError: the image has another shape, dtype or value range (the message says
            how to convert it), or the name is not a valid artifact name.
        ConflictError, RunStateError, NoActiveRunError: as for ``log_artifact``.
    """
    check_artifact_name(name)
    client, ref = context.target(run)  # first: no current run fails before any encoding work
    return client.log_image(name, image, run=ref, overwrite=overwrite)
