"""Decoding image files in parallel: centre-cropped, resized, errors named by file."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm


def decode_image(path: str, size: int, grey: bool) -> tuple[np.ndarray, int, int]:
    """Read one image file, centre-crop it square, resize to size×size; also its original size."""
    mode = "L" if grey else "RGB"
    with Image.open(path) as image:
        width, height = image.size
        # JPEG: libjpeg decodes at 1/2, 1/4 or 1/8 scale; draft() says where the original lies in
        # the reduced image, (0, 0, width/k, height/k): each side rounded up holds a partial block.
        drafted = image.draft(mode, (size, size))
        _, _, w, h = drafted[1] if drafted else (0, 0, width, height)
        image = image.convert(mode)
        side = min(width, height)  # the centre square in original pixels, mapped axis by axis
        left, top = (width - side) / 2, (height - side) / 2
        x, y = w / width, h / height  # exactly 1/k, so the box stays inside the reduced image
        box = (left * x, top * y, (left + side) * x, (top + side) * y)
        image = image.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
        return np.asarray(image), width, height


def _exit_with_parent() -> None:
    """In a worker: exit once the process that started it is gone (a notebook killed mid-way)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:  # an orphan is handed to another process: its ppid changes
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _decode_or_error(job: tuple[str, int, bool]) -> tuple[np.ndarray, int, int] | tuple[str, bool]:
    """The decoded image, or (an error line naming the file, whether PIL could not read it)."""
    try:
        return decode_image(*job)
    except (UnidentifiedImageError, OSError) as err:  # not an image, or a truncated one
        return f"{Path(job[0]).name}: {type(err).__name__}: {err}", True
    except Exception as err:  # noqa: BLE001 (a bug here, reported to the caller by file name)
        return f"{Path(job[0]).name}: {type(err).__name__}: {err}", False


def decode_images(
    paths: list[str], size: int, grey: bool, on_error: str = "stop", workers: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode files in parallel into (images, kept mask, original width×height of those kept).

    on_error="stop" raises listing every unreadable file; "skip" prints them and leaves them out.
    """
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip' (got {on_error!r}).")
    jobs = [(str(p), size, grey) for p in paths]
    workers = workers or os.cpu_count() or 1
    bar = {"total": len(jobs), "unit": "img", "desc": f"decoding at {size} px"}
    if workers > 1 and len(jobs) > 64:
        with ProcessPoolExecutor(workers, initializer=_exit_with_parent) as pool:
            results = list(tqdm(pool.map(_decode_or_error, jobs, chunksize=64), **bar))
    else:
        results = [_decode_or_error(job) for job in tqdm(jobs, **bar)]
    failed = [r for r in results if isinstance(r[0], str)]  # (error line, unreadable file?)
    errors = [line for line, _ in failed]
    if errors and on_error == "stop":
        advice = []
        if any(unreadable for _, unreadable in failed):
            advice.append(
                "UnidentifiedImageError/OSError: PIL cannot read the file, so the archive looks"
                " damaged: delete it and download it again, or pass on_error='skip' to leave"
                " such files out."
            )
        if not all(unreadable for _, unreadable in failed):
            advice.append(
                "Any other error is a bug in course_utils's decoding, not a damaged download"
                " (downloading again will not help): please report it with the file name and"
                " the image's width×height."
            )
        raise ValueError(
            f"{len(errors)} image(s) could not be decoded:\n  "
            + "\n  ".join(errors[:20])
            + "\n"
            + "\n".join(advice)
        )
    if errors:
        print(f"Skipped {len(errors)} unreadable image(s):\n  " + "\n  ".join(errors[:20]))
    kept = np.array([not isinstance(r[0], str) for r in results], dtype=bool)
    good = [r for r in results if not isinstance(r[0], str)]
    empty = np.zeros((0, size, size) if grey else (0, size, size, 3), np.uint8)
    images = np.stack([r[0] for r in good]) if good else empty
    return images, kept, np.array([r[1:] for r in good], dtype=int).reshape(-1, 2)
