"""Training and evaluation: `fit` returns a History; `evaluate` and `predict` score a model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from course_utils.config import get_device
from course_utils.metrics import classification_scores


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
    if _on_cuda(device):  # channels_last lets cuDNN use its fastest convolution kernels
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
) -> History:
    """Train for up to `epochs`; keep and restore the weights of the best epoch.

    monitor: a History column ("val_loss", "val_macro_f1", ...); losses are minimised, scores
    maximised. patience: stop after that many epochs without improvement (None: never).
    on_epoch_end(history) may return True to stop. AMP and channels_last are used on CUDA only.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be ≥ 1 (got {epochs}).")
    device = device or get_device()
    use_amp = _on_cuda(device)
    model.to(device, memory_format=torch.channels_last) if use_amp else model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer or torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    if val_loader is None and monitor.startswith("val_"):
        monitor = "train_loss"
    minimise = monitor.endswith("loss")
    history = History(monitor=monitor)
    best_value, best_state, checked = None, None, False

    bar = tqdm(total=epochs * len(train_loader), disable=not progress, unit="batch")
    for epoch in range(1, epochs + 1):
        set_train_mode(model)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        start = time.perf_counter()
        for images, labels in train_loader:
            images, labels = _to_device(images, device), labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = model(images)
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
        if val_loader is not None:
            scores = evaluate(model, val_loader, device=device, loss_fn=loss_fn)
            row.update({f"val_{name}": value for name, value in scores.items()})
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
