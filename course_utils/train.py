"""Training and evaluation: `fit` returns a History; `evaluate` and `predict` score a model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from course_utils.config import get_device
from course_utils.data import ArrayDataset
from course_utils.metrics import classification_scores

CACHE_BUDGET = 2 * 1024**3  # bytes of cached frozen-prefix features that fit() may keep


@dataclass
class History:
    """Per-epoch metrics of one `fit` call, and which epoch's weights were kept."""

    monitor: str
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0  # 1-based; its weights are the ones left in the model
    stopped_early: bool = False

    def __getitem__(self, metric: str) -> list[float]:
        return [row[metric] for row in self.epochs]

    @property
    def best(self) -> dict[str, float]:
        """The metrics of the epoch whose weights were restored."""
        return self.epochs[self.best_epoch - 1]

    @property
    def images_per_s(self) -> float:
        """Training throughput over all epochs (images per second, training phase only)."""
        seconds = sum(row["train_seconds"] for row in self.epochs)
        return sum(row["train_images"] for row in self.epochs) / max(seconds, 1e-9)

    def to_frame(self) -> pd.DataFrame:
        """The history as a table, one row per epoch."""
        return pd.DataFrame(self.epochs).set_index("epoch")


def set_train_mode(model: nn.Module) -> nn.Module:
    """model.train(), but blocks with no trainable parameter stay in eval mode.

    A frozen block then behaves exactly as pretrained: its BatchNorm keeps the ImageNet
    statistics and its dropout is off.
    """
    model.train()
    for block in model.children():
        params = list(block.parameters())
        if params and not any(p.requires_grad for p in params):
            block.eval()
    return model


def _on_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    if _on_cuda(device) and x.ndim == 4:  # channels_last lets cuDNN pick its fastest kernels
        return x.to(device, non_blocking=True, memory_format=torch.channels_last)
    return x.to(device)


@torch.no_grad()
def _logits_and_labels(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model over a loader in eval mode; logits (float32) and labels on the CPU."""
    model.eval()
    all_logits, all_labels = [], []
    for images, labels in loader:
        with torch.autocast(device.type, dtype=torch.float16, enabled=_on_cuda(device)):
            logits = model(_to_device(images, device))
        all_logits.append(logits.float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits), torch.cat(all_labels)


def predict(
    model: nn.Module, loader: DataLoader, *, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (N×C) and the true labels (N) for every image of the loader."""
    device = device or get_device()
    model.to(device)
    logits, labels = _logits_and_labels(model, loader, device)
    return logits.softmax(dim=1).numpy(), labels.numpy()


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    *,
    device: torch.device | None = None,
    loss_fn: nn.Module | None = None,
) -> dict[str, float]:
    """Loss, accuracy, balanced accuracy, micro and macro F1 of the model on a loader."""
    device = device or get_device()
    model.to(device)
    logits, labels = _logits_and_labels(model, loader, device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    loss = float(loss_fn(logits, labels.to(logits.device)))
    preds = logits.argmax(dim=1).numpy()
    return {"loss": loss, **classification_scores(labels.numpy(), preds, logits.shape[1])}


def frozen_prefix_length(model: nn.Module) -> int:
    """How many leading blocks of an nn.Sequential have parameters and none trainable."""
    if not isinstance(model, nn.Sequential):
        return 0
    count = 0
    for block in list(model.children())[:-1]:  # the head always trains
        params = list(block.parameters())
        if not params or any(p.requires_grad for p in params):
            break
        count += 1
    return count


class FeatureSet(Dataset):
    """Precomputed features and their labels, indexed by whole batches like ArrayDataset."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.features[index], self.labels[index]


def _prefix_features(
    prefix: nn.Module, dataset: ArrayDataset, device: torch.device, budget: int
) -> torch.Tensor | None:
    """The frozen prefix's output for every image, or None if it would exceed `budget` bytes."""
    chunks = []
    with (
        torch.no_grad(),
        torch.autocast(device.type, dtype=torch.float16, enabled=_on_cuda(device)),
    ):
        for start in range(0, len(dataset), 256):
            images, _ = dataset[list(range(start, min(start + 256, len(dataset))))]
            out = prefix(_to_device(images, device))
            if start == 0 and out[0].numel() * out.element_size() * len(dataset) > budget:
                return None
            chunks.append(out.contiguous())
    return torch.cat(chunks)


def cache_frozen_prefix(
    model: nn.Module,
    loaders: list[DataLoader | None],
    device: torch.device,
    budget: int = CACHE_BUDGET,
) -> tuple[nn.Module, list[DataLoader | None]] | None:
    """Run the frozen leading blocks once; return the rest of the model and loaders of features.

    Only when it is exact: the prefix is frozen (and in eval mode during fit), the loaders serve
    an ArrayDataset by whole batches with no augmentation, and the features fit in `budget`.
    The feature loaders reuse each loader's sampler and generator, so batches come in the
    same order as without the cache.
    """
    n = frozen_prefix_length(model)
    usable = [
        loader is None
        or (
            isinstance(loader.dataset, ArrayDataset)
            and loader.batch_size is None
            and loader.dataset.transform is None
        )
        for loader in loaders
    ]
    if n == 0 or not all(usable):
        return None
    prefix = model[:n].eval()
    cached = []
    for loader in loaders:
        if loader is None:
            cached.append(None)
            continue
        features = _prefix_features(prefix, loader.dataset, device, budget)
        if features is None:
            return None
        cached.append(
            DataLoader(
                FeatureSet(features, loader.dataset.labels),
                sampler=loader.sampler,
                batch_size=None,
                generator=loader.generator,
            )
        )
    return model[n:], cached


def make_optimizer(
    params, lr: float, weight_decay: float = 0.0, device: torch.device | None = None
) -> torch.optim.Adam:
    """Adam (fit's default), with its fused kernel on CPU and CUDA: several times faster steps."""
    fused = (device or get_device()).type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)


@torch.no_grad()
def cnn_codes(
    model: nn.Sequential,
    loader: DataLoader,
    upto: str | None = None,
    device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """CNN codes: each image's output of the blocks up to `upto` (default: all but the head)."""
    names = [name for name, _ in model.named_children()]
    if upto is not None and upto not in names[:-1]:
        raise ValueError(f"Unknown block {upto!r}. Choose one of: {', '.join(names[:-1])}.")
    body = model[: names.index(upto) + 1 if upto else len(names) - 1]
    device = device or get_device()
    body.to(device).eval()
    codes, labels = [], []
    for images, batch_labels in loader:
        out = body(_to_device(images, device)).float()
        codes.append((out.mean(dim=(2, 3)) if out.ndim == 4 else out.flatten(1)).cpu())
        labels.append(batch_labels)
    return torch.cat(codes).numpy(), torch.cat(labels).numpy()


def param_groups(model: nn.Sequential, lr: float, pretrained_factor: float = 0.1) -> list[dict]:
    """Optimizer groups: the head at `lr`, every other trainable block at lr × pretrained_factor."""
    head = [p for p in model.head.parameters() if p.requires_grad]
    body = [
        p
        for name, block in model.named_children()
        if name != "head"
        for p in block.parameters()
        if p.requires_grad
    ]
    groups = [{"params": head, "lr": lr, "name": "head"}]
    if body:
        groups.append({"params": body, "lr": lr * pretrained_factor, "name": "pretrained blocks"})
    return groups


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Weights for CrossEntropyLoss(weight=...): inverse class frequency, mean 1 over images."""
    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes).astype(float)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def _check_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if int(labels.max()) >= logits.shape[1] or int(labels.min()) < 0:
        raise ValueError(
            f"Labels run from {int(labels.min())} to {int(labels.max())} but the model has "
            f"{logits.shape[1]} outputs: build it with num_classes = number of classes."
        )


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None = None,
    *,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: nn.Module | None = None,
    monitor: str = "val_loss",
    patience: int | None = None,
    device: torch.device | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[History], bool | None] | None = None,
    cache_frozen: bool = True,
) -> History:
    """Train for up to `epochs`; keep and restore the weights of the best epoch.

    monitor: a History column ("val_loss", "val_macro_f1", ...); losses are minimised, scores
    maximised. patience: stop after that many epochs without improvement (None: never).
    on_epoch_end(history) may return True to stop. AMP and channels_last are used on CUDA only.
    cache_frozen: compute frozen leading blocks once, not every epoch (see cache_frozen_prefix).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be ≥ 1 (got {epochs}).")
    device = device or get_device()
    use_amp = _on_cuda(device)
    model.to(device, memory_format=torch.channels_last) if use_amp else model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer or make_optimizer(params, lr, weight_decay, device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if val_loader is None and monitor.startswith("val_"):
        monitor = "train_loss"
    minimise = monitor.endswith("loss")
    history = History(monitor=monitor)
    best_value, best_state, checked = None, None, False
    trained, batches = model, [train_loader, val_loader]
    start = time.perf_counter()
    cached = cache_frozen_prefix(model, batches, device) if cache_frozen else None
    if cached is not None:
        trained, batches = cached
        if progress:
            frozen = [name for name, _ in model.named_children()][: len(model) - len(trained)]
            print(
                f"Frozen {', '.join(frozen)}: computed once ({time.perf_counter() - start:.1f} s), "
                "not every epoch."
            )
    train_batches, val_batches = batches

    bar = tqdm(total=epochs * len(train_loader), disable=not progress, unit="batch")
    for epoch in range(1, epochs + 1):
        set_train_mode(model)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        start = time.perf_counter()
        for images, labels in train_batches:
            images, labels = _to_device(images, device), labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = trained(images)
                if not checked:
                    _check_labels(logits, labels)
                    checked = True
                loss = loss_fn(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            # Accumulate on the device: no synchronisation per batch.
            loss_sum += loss.detach() * len(labels)
            correct += (logits.detach().argmax(dim=1) == labels).sum()
            seen += len(labels)
            bar.update()
        if _on_cuda(device):
            torch.cuda.synchronize()
        train_seconds = time.perf_counter() - start
        row = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / seen,
            "train_accuracy": float(correct) / seen,
            "train_images": seen,
            "train_seconds": train_seconds,
            "images_per_s": seen / train_seconds,
        }
        if val_batches is not None:
            scores = evaluate(trained, val_batches, device=device, loss_fn=loss_fn)
            row.update({f"val_{name}": value for name, value in scores.items()})
        row["epoch_seconds"] = time.perf_counter() - start  # training and validation
        if monitor not in row:
            bar.close()
            raise ValueError(f"Cannot monitor {monitor!r}; choose one of: {', '.join(row)}.")
        history.epochs.append(row)

        value = row[monitor]
        improved = best_value is None or (value < best_value if minimise else value > best_value)
        if improved:
            best_value, history.best_epoch = value, epoch
            # A copy is only needed if a later epoch may overwrite these weights.
            last = epoch == epochs
            best_state = None if last else {k: v.clone() for k, v in model.state_dict().items()}
        shown = {k: f"{v:.3f}" for k, v in row.items() if k.endswith(("loss", "accuracy"))}
        bar.set_postfix(epoch=epoch, **shown)
        stop = on_epoch_end is not None and bool(on_epoch_end(history))
        if patience is not None and epoch - history.best_epoch >= patience and epoch < epochs:
            history.stopped_early = stop = True
        if stop:
            break
    bar.close()
    if history.best_epoch != len(history.epochs):
        model.load_state_dict(best_state)
    return history
