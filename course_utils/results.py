"""Every training run kept on disk (weights, history, test predictions), so notebooks reuse it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_utils.config import Profile
from course_utils.metrics import f1_table
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


def _folder(name: str, profile: Profile) -> Path:
    return results_dir() / profile.name / name


def run_info(name: str, profile: Profile) -> dict | None:
    """What was saved about a kept run (source, recipe, when), or None if there is none."""
    path = _folder(name, profile) / "info.json"
    return json.loads(path.read_text()) if path.is_file() else None


def load_run(name: str, source: str, profile: Profile, recipe: dict | None = None) -> Run | None:
    """The kept run `name` of this profile, if made from the same data source (and recipe)."""
    folder = _folder(name, profile)
    info = run_info(name, profile)
    if (
        info is None
        or info.get("source") != source
        or (recipe is not None and info.get("recipe") != recipe)
    ):
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
    """Keep a run (replacing an older one of the same name); written whole or not at all."""
    folder = _folder(name, profile)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    info = {**info, "name": name, "profile": profile.name, "saved": time.strftime("%Y-%m-%d %H:%M")}
    np.savez(partial / "predictions.npz", probs=probs, labels=labels)
    if history is not None:
        history.to_frame().reset_index().to_csv(partial / "history.csv", index=False)
        info |= {
            "monitor": history.monitor,
            "best_epoch": history.best_epoch,
            "stopped_early": history.stopped_early,
        }
    if model is not None:
        torch.save(model.state_dict(), partial / "weights.pt")
    (partial / "info.json").write_text(json.dumps(info, indent=1, default=str))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return Run(name, probs, labels, info, history)


def load_weights(model: nn.Module, name: str, profile: Profile, skip_head: bool = False) -> None:
    """Load a kept run's weights into `model` (all but the head with skip_head, for transfer)."""
    path = _folder(name, profile) / "weights.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"No kept weights for run {name!r} ({path}). Run the notebook that trains it first."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if skip_head:
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    missing, _ = model.load_state_dict(state, strict=not skip_head)
    if skip_head and any(not k.startswith("head.") for k in missing):
        raise ValueError(f"Run {name!r} does not fit this model: missing {missing[:5]}.")


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
        load_weights(model, name, profile)
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
