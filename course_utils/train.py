"""Training and evaluation: `fit` returns a History; `evaluate` and `predict` score a model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from course_utils.config import get_device
from course_utils.data import ArrayDataset, check_batches, check_label_range
from course_utils.heads import global_pool
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
        if _is_frozen(block):
            block.eval()
    return model


def _is_frozen(block: nn.Module) -> bool:
    """The block has parameters and none of them trains."""
    params = list(block.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda" and x.ndim == 4:  # channels_last lets cuDNN pick its fastest kernels
        return x.to(device, non_blocking=True, memory_format=torch.channels_last)
    return x.to(device)


@torch.no_grad()
def _logits_and_labels(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model over a loader in eval mode; logits (float32) and labels on the CPU."""
    check_batches(loader=loader)
    model.eval()
    all_logits, all_labels = [], []
    for images, labels in loader:
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
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
    check_label_range(labels, logits.shape[1], "the evaluated loader")
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
        if not _is_frozen(block):
            break
        count += 1
    return count


def _prefix_features(
    prefix: nn.Module, dataset: ArrayDataset, device: torch.device, budget: int
) -> torch.Tensor | None:
    """The frozen prefix's output for every image, or None if it would exceed `budget` bytes."""
    chunks = []
    with (
        torch.no_grad(),
        torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"),
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
    verbose: bool = False,
) -> tuple[nn.Module, list[DataLoader | None]] | None:
    """Run the frozen leading blocks once; return the rest of the model and loaders of features.

    Only when it is exact: the prefix is frozen (and in eval mode during fit), the loaders serve
    an ArrayDataset by whole batches with no augmentation, and the features fit in `budget`.
    The feature loaders reuse each loader's sampler and generator, so batches come in the
    same order as without the cache. verbose: say which blocks were cached, in how long.
    """
    start, n = time.perf_counter(), frozen_prefix_length(model)
    served = [loader for loader in loaders if loader is not None]
    fixed = all(isinstance(s.dataset, ArrayDataset) and s.dataset.transform is None for s in served)
    if n == 0 or not fixed or any(loader.batch_size is not None for loader in served):
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
        dataset = TensorDataset(features, loader.dataset.labels)  # indexed by whole batches
        order = {"sampler": loader.sampler, "generator": loader.generator}  # the same batches
        cached.append(DataLoader(dataset, batch_size=None, **order))
    if verbose:
        frozen = ", ".join(name for name, _ in list(model.named_children())[:n])
        seconds = time.perf_counter() - start
        print(f"Frozen {frozen}: computed once ({seconds:.1f} s), not every epoch.")
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
    """CNN codes: each image's output of the blocks up to `upto` (default: all but the head),
    averaged over its positions (heads.global_pool): one C-vector per image."""
    names = [name for name, _ in model.named_children()]
    if upto is not None and upto not in names[:-1]:
        raise ValueError(f"Unknown block {upto!r}. Choose one of: {', '.join(names[:-1])}.")
    body = model[: names.index(upto) + 1 if upto else len(names) - 1]
    device = device or get_device()
    body.to(device).eval()
    codes, labels = [], []
    for images, batch_labels in loader:
        out = body(_to_device(images, device)).float()
        codes.append(global_pool(out).cpu())  # B×C for maps of any rank, as the head pools
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


def train_epoch(
    model: nn.Module,
    batches: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    device: torch.device,
    scaler: torch.amp.GradScaler,
    bar: tqdm | None = None,
    check_labels: bool = True,
) -> dict[str, float]:
    """One pass over `batches`, updating the model in the mode the caller set (set_train_mode):
    the epoch's loss and accuracy (means over images), images and seconds. AMP on CUDA only;
    check_labels: a clear error naming the batch whose labels exceed the model's outputs."""
    use_amp = device.type == "cuda"
    loss_sum = torch.zeros((), device=device)
    predicted, targets = [], []
    start = time.perf_counter()
    for batch, (images, cpu_labels) in enumerate(batches, 1):
        images, labels = _to_device(images, device), cpu_labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = model(images)
            if check_labels:  # min and max of the labels still on the CPU: no device sync
                check_label_range(cpu_labels, logits.shape[1], f"training batch {batch}")
            loss = loss_fn(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        # Kept on the device and counted after the epoch: no synchronisation, few ops per batch.
        loss_sum += loss.detach() * len(labels)
        predicted.append(logits.detach().argmax(dim=1))
        targets.append(labels)
        if bar is not None:
            bar.update()
    if use_amp:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    seen = sum(len(labels) for labels in targets)
    correct = int((torch.cat(predicted) == torch.cat(targets)).sum()) if targets else 0
    return {
        "train_loss": float(loss_sum) / seen,
        "train_accuracy": correct / seen,
        "train_images": seen,
        "train_seconds": seconds,
        "images_per_s": seen / seconds,
    }


class EarlyStopping:
    """fit's bookkeeping after each epoch: the best epoch, a copy of its weights, when to stop.

    Only blocks with a trainable parameter are copied: a frozen one gets no gradient and runs in
    eval mode (set_train_mode), so it is left as it is (also if on_epoch_end changed it). Copying
    all of a ResNet-18 whose head alone trains took longer than training the head."""

    def __init__(self, model: nn.Module, history: History, epochs: int, patience, callback):
        self.model, self.history, self.epochs = model, history, epochs
        self.patience, self.callback = patience, callback
        self.value, self.state = None, None  # the best monitored value, a copy of its weights

    def end_epoch(self, row: dict[str, float]) -> bool:
        """Record the epoch; copy its weights if it is the best so far. True: stop training."""
        history, monitor, epoch = self.history, self.history.monitor, row["epoch"]
        if monitor not in row:
            raise ValueError(f"Cannot monitor {monitor!r}; choose one of: {', '.join(row)}.")
        history.epochs.append(row)
        value, best = row[monitor], self.value
        if best is None or (value < best if monitor.endswith("loss") else value > best):
            self.value, history.best_epoch = value, epoch
            # A copy is only needed if a later epoch may overwrite these weights.
            self.state = None if epoch == self.epochs else self._changing_state()
        stop = self.callback is not None and bool(self.callback(history))
        waited = epoch - history.best_epoch
        if self.patience is not None and waited >= self.patience and epoch < self.epochs:
            history.stopped_early = stop = True
        return stop

    def _changing_state(self) -> dict[str, torch.Tensor]:
        children = self.model.named_children()
        frozen = tuple(f"{name}." for name, block in children if _is_frozen(block))
        state = self.model.state_dict().items()
        return {k: v.clone() for k, v in state if not k.startswith(frozen)}

    def restore(self) -> None:
        """Put the best epoch's weights back into the model, unless it was the last epoch."""
        if self.history.best_epoch != len(self.history.epochs):
            self.model.load_state_dict(self.state, strict=False)


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
    check_batches(train_loader=train_loader, val_loader=val_loader)
    device = device or get_device()
    use_amp = device.type == "cuda"
    model.to(device, memory_format=torch.channels_last) if use_amp else model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer or make_optimizer(params, lr, weight_decay, device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if val_loader is None and monitor.startswith("val_"):
        monitor = "train_loss"
    history = History(monitor=monitor)
    stopping = EarlyStopping(model, history, epochs, patience, on_epoch_end)
    trained, batches = model, [train_loader, val_loader]
    if cache_frozen and (cached := cache_frozen_prefix(model, batches, device, verbose=progress)):
        trained, batches = cached
    train_batches, val_batches = batches
    with tqdm(total=epochs * len(train_loader), disable=not progress, unit="batch") as bar:
        for epoch in range(1, epochs + 1):
            set_train_mode(model)
            start = time.perf_counter()
            row = {"epoch": epoch}
            row |= train_epoch(trained, train_batches, optimizer, loss_fn, device, scaler, bar)
            if val_batches is not None:
                scores = evaluate(trained, val_batches, device=device, loss_fn=loss_fn)
                row.update({f"val_{name}": value for name, value in scores.items()})
            row["epoch_seconds"] = time.perf_counter() - start  # training and validation
            shown = {k: f"{v:.3f}" for k, v in row.items() if k.endswith(("loss", "accuracy"))}
            bar.set_postfix(epoch=epoch, **shown)
            if stopping.end_epoch(row):
                break
    stopping.restore()
    return history
