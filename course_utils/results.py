"""Every training run kept on disk (weights, history, test predictions), so notebooks reuse it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from filelock import FileLock
from torch import nn
from torch.utils.data import DataLoader

from course_utils.config import Profile
from course_utils.metrics import bootstrap_interval, classification_scores, f1_table
from course_utils.remote import file_hash
from course_utils.train import History, fit, predict

RESULTS_ENV = "COURSE_RESULTS_DIR"


def results_dir() -> Path:
    """Where runs are kept: $COURSE_RESULTS_DIR, the checkout's results/, or ~/course_results."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "results"
    return Path.home() / "course_results"


@dataclass
class Run:
    """One kept run: what it predicted on the test set, how it trained, and with what."""

    name: str
    probs: np.ndarray  # test-set class probabilities, N×C
    labels: np.ndarray  # test-set true labels, N
    info: dict  # profile, data source, weights, seconds, ... as saved
    history: History | None = None  # None for models trained without epochs (trees)
    reused: bool = False

    def table(self, class_names: Sequence[str], column: str | None = None) -> pd.DataFrame:
        """The seed slides' F1 table of this run's test predictions."""
        return f1_table(self.labels, self.probs.argmax(axis=1), class_names, column or self.name)


def _interval(run: Run, metric: str, groups: np.ndarray | None) -> str:
    predicted = run.probs.argmax(axis=1)
    point, low, high = bootstrap_interval(run.labels, predicted, metric, groups=groups)
    return f"{point:.2f} ({low:.2f}–{high:.2f})"


def _spread(values: Sequence[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f} ({len(values)} seeds)"


def _settings(recipe: dict) -> str:
    """A recipe's start, learning rate and epoch budget, short enough for a table cell."""
    parts = [str(recipe["weights"])] if "weights" in recipe else []
    if "lr" in recipe:
        parts.append(f"lr {float(recipe['lr']):.0e}".replace("e-0", "e-"))
    if "epochs" in recipe:
        parts.append(f"{recipe['epochs']} epochs")
    return ", ".join(parts)


def compare(runs: dict[str, Run | Sequence[Run]], groups: np.ndarray | None = None) -> pd.DataFrame:
    """Validation to choose, test with 95% bootstrap intervals (by `groups`), seeds as mean ± sd.

    A list of runs is one setting trained with several seeds: its intervals are the first seed's.
    """
    rows = {}
    for name, kept in runs.items():
        seeds = [kept] if isinstance(kept, Run) else list(kept)
        first, recipe = seeds[0], seeds[0].info.get("recipe", {})
        val = [run.history.best["val_macro_f1"] for run in seeds if run.history]
        row = {"val macro F1": f"{val[0]:.2f}" if len(val) == 1 else _spread(val) if val else "–"}
        row["test macro F1 (95% CI)"] = _interval(first, "macro_f1", groups)
        row["test balanced accuracy (95% CI)"] = _interval(first, "balanced_accuracy", groups)
        if len(seeds) > 1:
            classes = first.probs.shape[1]
            scores = [classification_scores(r.labels, r.probs.argmax(1), classes) for r in seeds]
            row["test macro F1 over seeds"] = _spread([s["macro_f1"] for s in scores])
        row["settings"] = _settings(recipe)
        rows[name] = row
    return pd.DataFrame(rows).T.fillna("")


def _folder(name: str, profile: Profile) -> Path:
    return results_dir() / profile.name / name


def run_info(name: str, profile: Profile) -> dict | None:
    """What was saved about a kept run (source, recipe, when), or None if there is none."""
    path = _folder(name, profile) / "info.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _damage(folder: Path, info: dict, names: Sequence[str]) -> str | None:
    """What is wrong with a kept run's files, checked against the sha256s its info.json keeps."""
    recorded = info.get("sha256", {})
    for file_name in names:
        path = folder / file_name
        if file_name not in recorded:
            return f"{path} was kept without a checksum (by an older course_utils)"
        if not path.is_file():
            return f"{path} is missing"
        if (actual := file_hash(path)) != recorded[file_name]:
            return f"{path} is damaged (sha256 {actual[:12]}…, kept as {recorded[file_name][:12]}…)"
    return None


def load_run(name: str, source: str, profile: Profile, recipe: dict | None = None) -> Run | None:
    """The kept run `name` of this profile, if made from the same data source (and recipe).

    A kept run whose files do not match the checksums it was kept with is not used (it says so).
    """
    folder = _folder(name, profile)
    info = run_info(name, profile)
    if (
        info is None
        or info.get("source") != source
        or (recipe is not None and info.get("recipe") != recipe)
    ):
        return None
    kept_files = [
        n for n in ("predictions.npz", "history.csv", "weights.pt") if (folder / n).exists()
    ]
    if problem := _damage(folder, info, kept_files or ["predictions.npz"]):
        print(f"{name}: not reusing the kept run: {problem}. It is made again.")
        return None
    with np.load(folder / "predictions.npz") as saved:
        probs, labels = saved["probs"], saved["labels"]
    history = None
    if (folder / "history.csv").is_file():
        rows = pd.read_csv(folder / "history.csv").to_dict("records")
        history = History(info["monitor"], rows, info["best_epoch"], info["stopped_early"])
    return Run(name, probs, labels, info, history, reused=True)


def save_run(
    name: str,
    probs: np.ndarray,
    labels: np.ndarray,
    info: dict,
    profile: Profile,
    history: History | None = None,
    model: nn.Module | None = None,
) -> Run:
    """Keep a run (replacing an older one of the same name); written whole or not at all.

    Where it cannot be written (a read-only or full disk) the run is returned all the same,
    with a line saying it was not kept.
    """
    folder = _folder(name, profile)
    info = {**info, "name": name, "profile": profile.name, "saved": time.strftime("%Y-%m-%d %H:%M")}
    if history is not None:
        info |= {
            "monitor": history.monitor,
            "best_epoch": history.best_epoch,
            "stopped_early": history.stopped_early,
        }
    run = Run(name, probs, labels, info, history)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(folder.with_name(f".{name}.lock")):
            partial = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=folder.parent))
            try:
                _write_run(partial, run, model)
                _swap_in(partial, folder)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    except OSError as err:
        print(
            f"{name}: this run could not be kept in {folder.parent} ({err.strerror or err}); it is "
            f"used from memory and made again next time. Point {RESULTS_ENV} at a folder you can "
            f"write to, to keep runs."
        )
    return run


def _write_run(partial: Path, run: Run, model: nn.Module | None) -> None:
    """A run's files in `partial`, info.json last with the sha256 of each of the others."""
    np.savez(partial / "predictions.npz", probs=run.probs, labels=run.labels)
    if run.history is not None:
        run.history.to_frame().reset_index().to_csv(partial / "history.csv", index=False)
    if model is not None:
        torch.save(model.state_dict(), partial / "weights.pt")
    run.info["sha256"] = {p.name: file_hash(p) for p in sorted(partial.iterdir())}
    (partial / "info.json").write_text(json.dumps(run.info, indent=1, default=str))


def _swap_in(partial: Path, folder: Path) -> None:
    """Put `partial` at `folder`: the old run is moved aside first, never deleted in place."""
    if not folder.exists():
        os.replace(partial, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    os.replace(folder, old / folder.name)  # a kill here leaves no run (made again), never half
    os.replace(partial, folder)
    shutil.rmtree(old, ignore_errors=True)


def load_weights(model: nn.Module, name: str, profile: Profile, skip_head: bool = False) -> None:
    """Load a kept run's weights into `model` (all but the head with skip_head, for transfer)."""
    folder = _folder(name, profile)
    path = folder / "weights.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"No kept weights for run {name!r} ({path}). Run the notebook that trains it first."
        )
    if problem := _damage(folder, run_info(name, profile) or {}, ["weights.pt"]):
        raise ValueError(
            f"Run {name!r} cannot be used: {problem}. Delete {folder} and run the notebook that "
            f"trains it again (or pass rerun=True there)."
        )
    _load_state(model, path, skip_head)


def _load_state(model: nn.Module, path: Path, skip_head: bool = False) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if skip_head:
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    missing, _ = model.load_state_dict(state, strict=not skip_head)
    if skip_head and any(not k.startswith("head.") for k in missing):
        raise ValueError(
            f"Run {path.parent.name!r} does not fit this model: missing {missing[:5]}."
        )


def layout_digest(model: nn.Module) -> str:
    """A short fingerprint of the model's parameters and buffers: names, shapes, trainable?"""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    layout = [(k, tuple(v.shape), k in trainable) for k, v in model.state_dict().items()]
    return hashlib.sha1(repr(layout).encode()).hexdigest()[:12]


# Optimizer settings that change speed, not results (and whose defaults vary between releases).
_IMPLEMENTATION = {"params", "foreach", "fused", "capturable", "differentiable"}
_DISPLAY_ONLY = {"progress"}  # fit arguments that never change what is trained


def describe(value: object) -> str:
    """A fit argument as it enters a run's recipe: what it does, not how this torch prints it."""
    if isinstance(value, torch.optim.Optimizer):
        groups = [
            {"parameters": sum(p.numel() for p in group["params"])}
            | {k: v for k, v in sorted(group.items()) if k not in _IMPLEMENTATION}
            for group in value.param_groups
        ]
        return f"{type(value).__name__}({groups})"
    if isinstance(value, nn.Module):  # e.g. a loss: its settings and buffers (class weights)
        settings = {
            k: v
            for k, v in sorted(vars(value).items())
            if not k.startswith("_") and k != "training" and isinstance(v, int | float | str | None)
        }
        buffers = {k: [round(x, 6) for x in b.flatten().tolist()] for k, b in value.named_buffers()}
        return f"{type(value).__name__}({settings | buffers})"
    return repr(value)


def recipe_of(model: nn.Module, info: dict | None, fit_kwargs: dict) -> dict:
    """The key a kept run must match: `info`, the fit arguments and the model's layout."""
    recipe = {**(info or {})}
    recipe |= {k: describe(v) for k, v in sorted(fit_kwargs.items()) if k not in _DISPLAY_ONLY}
    recipe["layout"] = layout_digest(model)  # a model built differently never reuses old weights
    return recipe


def reuse(
    name: str,
    model: nn.Module,
    *,
    source: str,
    profile: Profile,
    info: dict | None = None,
    **fit_kwargs,
) -> Run | None:
    """The kept run that train_or_load would reuse, its weights loaded into `model`; else None."""
    kept = load_run(name, source, profile, recipe_of(model, info, fit_kwargs))
    if kept is not None:
        _load_state(model, _folder(name, profile) / "weights.pt")  # load_run checked its sha256
        print(f"{name}: reusing the run kept on {kept.info['saved']} (rerun=True trains again).")
    return kept


def train_or_load(
    name: str,
    model: nn.Module,
    loaders: dict[str, DataLoader],
    *,
    source: str,
    profile: Profile,
    rerun: bool = False,
    info: dict | None = None,
    **fit_kwargs,
) -> Run:
    """fit() on loaders["train"]/["val"] and predict loaders["test"]; keep the run.

    If this profile already kept a run of that name, on the same data and with the same recipe
    (`info`, the fit arguments and the model's layout), load its weights into `model` and return
    it instead of training again (rerun=True trains anyway).
    """
    if not rerun and (kept := reuse(name, model, source=source, profile=profile, info=info,
                                    **fit_kwargs)):  # fmt: skip
        return kept
    recipe = recipe_of(model, info, fit_kwargs)  # before fit: a callback may unfreeze blocks
    start = time.perf_counter()
    history = fit(model, loaders["train"], loaders.get("val"), **fit_kwargs)
    probs, labels = predict(model, loaders["test"])
    details = {"source": source, "seconds": round(time.perf_counter() - start, 1), "recipe": recipe}
    return save_run(name, probs, labels, details, profile, history, model)


def compute_or_load(
    name: str,
    compute: Callable[[], tuple[np.ndarray, np.ndarray]],
    *,
    source: str,
    profile: Profile,
    rerun: bool = False,
    info: dict | None = None,
) -> Run:
    """Keep the (test probabilities, test labels) that `compute()` returns, e.g. for a tree."""
    kept = None if rerun else load_run(name, source, profile, info or {})
    if kept is not None:
        print(f"{name}: reusing the run kept on {kept.info['saved']} (rerun=True computes again).")
        return kept
    start = time.perf_counter()
    probs, labels = compute()
    details = {
        "source": source,
        "seconds": round(time.perf_counter() - start, 1),
        "recipe": info or {},
    }
    return save_run(name, probs, labels, details, profile)
