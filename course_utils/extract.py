"""Zip extraction that is safe: nothing outside the target, all or nothing."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from course_utils.download import DownloadError

JUNK = ("__MACOSX/", ".DS_Store", "/._")  # macOS metadata that zips often carry


class UnsafeArchiveError(ValueError):
    """An archive entry would escape the target folder or is a link."""


def _is_junk(name: str) -> bool:
    return name.startswith("__MACOSX/") or any(j in f"/{name}" for j in JUNK[1:])


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract a zip into `target` (skipping macOS junk), all or nothing.

    Entries with absolute paths, `..` or symbolic links are refused before anything is written.
    """
    target = Path(target)
    if target.is_dir():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = []
            for info in zf.infolist():
                path = PurePosixPath(info.filename.replace("\\", "/"))
                if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
                    raise UnsafeArchiveError(
                        f"{archive.name} holds an entry that would be written outside the "
                        f"target folder: {info.filename!r}. The archive is not the published one; "
                        f"delete {archive} and download it again."
                    )
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchiveError(
                        f"{archive.name} holds a symbolic link {info.filename!r}; refusing to "
                        f"extract it. Delete {archive} and download it again."
                    )
                if not _is_junk(info.filename):
                    members.append(info)
            for info in members:
                zf.extract(info, partial)
        partial.mkdir(exist_ok=True)
        os.replace(partial, target)
    except (zipfile.BadZipFile, EOFError) as err:
        raise DownloadError(
            f"{archive} is damaged ({err}); delete it and download it again."
        ) from err
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
