"""Turning a user's image file into exactly the kind of array the model was trained on."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnn.errors import DataError
from cnn.user_files import NotRegularFile, open_regular

# Errors Pillow raises for files that are not images, are cut short or are malformed.
_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
                Image.DecompressionBombError)


def _flatten(img: Image.Image) -> Image.Image:
    """Composite any transparency onto black: the background of MNIST-style training data,
    so a digit drawn on a transparent canvas looks like the training digits."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit greyscale: Pillow's convert("L") would clip, not scale, to 8 bits.
        values = np.asarray(img, dtype=np.float64) / 257.0
        img = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    return img


def _open_regular(path: Path):
    """``path`` opened for reading (``cnn.user_files.open_regular``); DataError naming it otherwise."""
    try:
        return open_regular(path)
    except NotRegularFile as error:
        raise DataError(f"cannot read {path} as an image ({error.strerror}); use a PNG or JPEG file") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None


def load_image(path: str | os.PathLike, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Read a PNG/JPEG (any size or mode) as uint8 (H, W, C) for a model of ``image_shape``.

    Conversion mirrors the training data: EXIF orientation applied; transparency composited
    on black; then mode ``L`` (Pillow's ITU-R 601 luma) for C == 1 or ``RGB`` for C == 3;
    then, when the size differs, resized to exactly (W, H) with a Lanczos filter. The aspect
    ratio is not kept: crop beforehand if the object is not roughly centred and square.
    Not an image, empty, truncated, or larger than Pillow's ``Image.MAX_IMAGE_PIXELS``
    (a decompression-bomb guard): ``DataError`` naming the file.
    """
    path = Path(path)
    height, width, channels = image_shape
    if channels not in (1, 3):
        raise ValueError(f"image_shape must end in 1 or 3 channels, got {image_shape}")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open_regular(path) as handle, Image.open(handle) as img:
                img.load()  # decode now, inside the try, so truncation is caught here
                img = ImageOps.exif_transpose(img)
                img = _flatten(img).convert("L" if channels == 1 else "RGB")
                if img.size != (width, height):
                    img = img.resize((width, height), Image.Resampling.LANCZOS)
                array = np.array(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(f"refusing {path}: it is too large to decode safely ({error}); "
                        "scale it down first") from error
    except _READ_ERRORS as error:
        reason = ("it is empty" if path.is_file() and path.stat().st_size == 0
                  else "not an image format Pillow knows" if isinstance(error, UnidentifiedImageError)
                  else error)
        raise DataError(f"cannot read {path} as an image ({reason}); use a PNG or JPEG "
                        "file") from error
    return array.reshape(height, width, channels)
