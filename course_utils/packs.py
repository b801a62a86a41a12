"""Prepared packs: the decoded arrays, weight files and kept runs a workshop needs, with a manifest.

A pack is laid out like a mirror (COURSE_MIRROR): `prepared/<folder>_<size>px.npz` and `.csv`,
`weights/<torchvision file>`, optionally `results/<profile>/<run>/`, and `manifest.json` with the
bytes and sha256 of every file and the licence and citation of each dataset. Behind a mirror
that serves a pack, the prepared arrays are fetched (and checked against the manifest) instead of
the original archives, and nothing is decoded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from course_utils.catalog import DATASETS
from course_utils.download import DownloadError, download
from course_utils.remote import MIRROR_ENV, RemoteFile, file_hash

MANIFEST = "manifest.json"


def _copy_into(source: Path, pack: Path, relative: str) -> dict:
    """Copy `source` to pack/relative under a temporary name, renamed whole; its manifest entry."""
    dest = pack / relative
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{dest.name}.partial-", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, dest)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return {"path": relative, "bytes": dest.stat().st_size, "sha256": file_hash(dest)}


def write_pack(
    pack: Path, prepared: list[tuple[str, Path]], weights: list[Path], runs: Path | None = None
) -> dict:
    """Copy (dataset name, prepared .npz) pairs, weight files and a results folder into `pack`.

    The manifest is written last: a pack without one is incomplete. Returns the manifest.
    """
    pack = Path(pack)
    files = []
    for name, npz in prepared:
        for path in (npz, npz.with_suffix(".csv")):
            files.append(_copy_into(path, pack, f"prepared/{path.name}") | {"dataset": name})
    files += [_copy_into(path, pack, f"weights/{path.name}") for path in weights]
    if runs is not None and runs.is_dir():
        for path in sorted(p for p in runs.rglob("*") if p.is_file() and not _hidden(p, runs)):
            files.append(_copy_into(path, pack, f"results/{path.relative_to(runs).as_posix()}"))
    used = {f["dataset"] for f in files if "dataset" in f}
    manifest = {
        "made": time.strftime("%Y-%m-%d %H:%M"),
        "datasets": {
            name: {"title": info.title, "licence": info.licence, "cite": info.cite}
            for name, info in DATASETS.items()
            if name in used
        },
        "files": files,
    }
    (pack / f".{MANIFEST}.partial").write_text(json.dumps(manifest, indent=1))
    os.replace(pack / f".{MANIFEST}.partial", pack / MANIFEST)
    return manifest


def _hidden(path: Path, root: Path) -> bool:
    """Locks, stamps and temporaries (names starting with a dot) stay out of a pack."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def check_pack(pack: Path) -> list[str]:
    """What is wrong with a pack on disk: files missing, or not the bytes its manifest records."""
    pack = Path(pack)
    if not (pack / MANIFEST).is_file():
        return [f"{pack / MANIFEST} is missing: the pack is incomplete; make it again"]
    problems = []
    for entry in json.loads((pack / MANIFEST).read_text())["files"]:
        path = pack / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
        elif path.stat().st_size != entry["bytes"] or file_hash(path) != entry["sha256"]:
            problems.append(f"{entry['path']} is not the file the manifest records (damaged?)")
    return problems


def mirror_manifest(folder: Path) -> dict | None:
    """The manifest of the pack that $COURSE_MIRROR serves, fetched into `folder`; None if none."""
    if not os.environ.get(MIRROR_ENV, "").strip():
        return None
    remote = RemoteFile(MANIFEST, (), mirror_path=MANIFEST)
    target = Path(folder) / f"mirror-{quote(os.environ[MIRROR_ENV], safe='')}"
    (target / MANIFEST).unlink(missing_ok=True)  # the mirror's current one, never a stale copy
    try:
        path = download(remote, target, retries=1, deadline=10, progress=False, announce=False)
        return json.loads(path.read_text())
    except (DownloadError, ValueError):  # a plain data/ folder as mirror: no pack, no manifest
        return None


def _pack_entries(npz: Path) -> list[dict] | None:
    """The manifest entries of a prepared .npz and its .csv in the mirror's pack, if it has both."""
    manifest = mirror_manifest(npz.parent.parent / ".mirror")
    entries = {e["path"]: e for e in (manifest or {}).get("files", [])}
    wanted = [f"prepared/{npz.with_suffix('.csv').name}", f"prepared/{npz.name}"]
    return [entries[path] for path in wanted] if all(p in entries for p in wanted) else None


def offers(npz: Path) -> bool:
    """Does the pack that $COURSE_MIRROR serves hold this prepared .npz (and its .csv)?"""
    return _pack_entries(npz) is not None


def fetch_prepared(npz: Path) -> bool:
    """Fetch a prepared .npz and its .csv into their place from a mirror's pack, if it has them."""
    if (entries := _pack_entries(npz)) is None:
        return False
    print(f"The mirror's pack has {npz.name}: fetching the prepared arrays, not the archives.")
    for entry in entries:  # the .csv first: the .npz's arrival makes the cache
        path = entry["path"]
        remote = RemoteFile(
            Path(path).name, (), sha256=entry["sha256"], size=entry["bytes"], mirror_path=path
        )
        download(remote, npz.parent)
    return True
