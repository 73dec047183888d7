"""A small, generic training loop for torch detectors (imports torch when called).

The model's ``forward(images, targets)`` in train mode returns a dict of losses; their sum is
minimised with SGD (linear warm-up, step decay at given epochs). Each epoch ends with an atomic
``out/checkpoint.pt`` (model, optimizer, epoch, iteration, config); ``resume=True`` continues from
it. Every iteration appends one JSON line to ``out/train_log.jsonl`` (losses, lr, seconds, and the
figures of the model's ``train_diagnostics()`` when it has one); the end writes ``out/weights.pt``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable

from xraybag.errors import XraybagError
from xraybag.learners.base import resolve_device

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
LOG = "train_log.jsonl"


@dataclass
class TrainConfig:
    """SGD schedule. ``lr_steps`` are epochs after which the lr is multiplied by ``gamma``
    (the 1x schedule of mmdet: 12 epochs, steps at 8 and 11). Warm-up is linear over the first
    ``warmup_iters`` iterations from ``lr * warmup_ratio``."""

    epochs: int = 12
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    lr_steps: tuple[int, ...] = (8, 11)
    gamma: float = 0.1
    grad_clip: float | None = None
    seed: int | None = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict | None) -> "TrainConfig":
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise XraybagError(f"unknown training config key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
        if "lr_steps" in d:
            d["lr_steps"] = tuple(int(s) for s in d["lr_steps"])
        return cls(**d)

    def lr_at(self, iteration: int, epoch: int) -> float:
        """The learning rate at global ``iteration`` (0-based) in ``epoch`` (0-based)."""
        lr = self.lr * self.gamma ** sum(1 for s in self.lr_steps if epoch >= s)
        if self.warmup_iters > 0 and iteration < self.warmup_iters:
            k = iteration / self.warmup_iters
            lr *= self.warmup_ratio + (1.0 - self.warmup_ratio) * k
        return lr


def move_to(obj: Any, device) -> Any:
    """``obj`` with every tensor in it (through lists, tuples and dicts) moved to ``device``."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class EpochShuffle:
    """A ``DataLoader`` sampler whose order in each epoch depends only on ``(seed, epoch)``
    (:meth:`set_epoch`, called by :func:`fit`), so a resumed run sees the epochs an uninterrupted
    one would."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = int(n), int(seed), bool(shuffle), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        import numpy as np

        return iter(np.random.default_rng((self.seed, self.epoch)).permutation(self.n).tolist())


def _set_epoch(loader: Any, epoch: int) -> None:
    """Tell the loader's sampler and dataset (those with ``set_epoch``) which epoch begins."""
    for part in (getattr(loader, "sampler", None), getattr(loader, "dataset", None)):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)


def _split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1]
    raise XraybagError("the training data loader must yield (images, targets) pairs")


def fit(
    model,
    train_loader: Iterable,
    out_dir: str | Path,
    config: TrainConfig | dict | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    optimizer_factory: Callable[[Any, TrainConfig], Any] | None = None,
    extra: dict | None = None,
    on_epoch_end: Callable[[int, Any], dict | None] | None = None,
) -> Path:
    """Train ``model`` on ``train_loader`` (yielding ``(images, targets)``) and return the path
    of ``out_dir/weights.pt`` (a dict: ``model`` state dict, ``config``, ``epoch``, ``iteration``,
    ``extra``).

    ``optimizer_factory(model, config)`` replaces the default SGD over the trainable parameters.
    ``extra`` (JSON-able: the model's own config, class names) is stored in the checkpoint and the
    weights. ``on_epoch_end(epoch, model)`` may return a dict (e.g. validation metrics) that goes
    into the log. An existing checkpoint without ``resume`` is an error (it would be overwritten).
    """
    import torch

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, weights_path, log_path = out / CHECKPOINT, out / WEIGHTS, out / LOG
    dev = torch.device(resolve_device(device))

    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer_factory is not None:
        optimizer = optimizer_factory(model, cfg)
    else:
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    start_epoch, iteration = 0, 0
    if ckpt_path.exists():
        if not resume:
            raise XraybagError("already holds a training checkpoint; pass --resume to continue it or choose another output folder", str(out))
        try:
            state = torch.load(ckpt_path, map_location=dev, weights_only=False)
        except Exception as e:
            raise XraybagError(f"cannot read the checkpoint: {type(e).__name__}: {e}", str(ckpt_path)) from None
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, iteration = int(state["epoch"]), int(state["iteration"])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"].cpu())
    elif log_path.exists():
        log_path.unlink()  # no checkpoint: a fresh run with a fresh log

    def snapshot(epoch: int) -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "iteration": iteration,
            "config": asdict(cfg),
            "extra": extra or {},
            "torch_rng": torch.get_rng_state(),
        }

    try:
        from tqdm import tqdm
    except ModuleNotFoundError:  # pragma: no cover
        tqdm = None

    with open(log_path, "a") as log:
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            _set_epoch(train_loader, epoch)
            try:
                total = len(train_loader)  # type: ignore[arg-type]
            except TypeError:
                total = None
            bar = None
            if progress and tqdm is not None:
                bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="it", file=sys.stderr, dynamic_ncols=True)
            t_prev = time.perf_counter()
            for batch in train_loader:
                images, targets = _split_batch(batch)
                images, targets = move_to(images, dev), move_to(targets, dev)
                lr = cfg.lr_at(iteration, epoch)
                for g in optimizer.param_groups:
                    g["lr"] = lr * g.get("lr_mult", 1.0)
                diagnostics = getattr(model, "train_diagnostics", None)
                if callable(diagnostics):
                    diagnostics()  # drop what evaluation between epochs left there
                losses = model(images, targets)
                if not isinstance(losses, dict) or not losses:
                    raise XraybagError("the model's forward in train mode must return a non-empty dict of losses")
                loss = sum(losses.values())
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise XraybagError(f"loss is {value} at iteration {iteration} (epoch {epoch + 1}); try a lower lr or more warm-up")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                now = time.perf_counter()
                rec = {
                    "epoch": epoch + 1,
                    "iter": iteration,
                    "loss": round(value, 6),
                    **{k: round(float(v.detach()), 6) for k, v in losses.items()},
                    "lr": lr,
                    "sec": round(now - t_prev, 4),
                }
                if callable(diagnostics):  # e.g. how far the label-aware hook moved the features
                    rec.update({k: round(float(v), 6) for k, v in diagnostics().items()})
                t_prev = now
                log.write(json.dumps(rec) + "\n")
                log.flush()
                iteration += 1
                if bar is not None:
                    bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}")
                    bar.update(1)
            if bar is not None:
                bar.close()
            if on_epoch_end is not None:
                info = on_epoch_end(epoch + 1, model)
                if info:
                    log.write(json.dumps({"epoch": epoch + 1, "iter": iteration, "eval": info}) + "\n")
                    log.flush()
            atomic_save(snapshot(epoch + 1), ckpt_path)

    final = {
        "model": model.state_dict(),
        "config": asdict(cfg),
        "epoch": max(cfg.epochs, start_epoch),
        "iteration": iteration,
        "extra": extra or {},
    }
    atomic_save(final, weights_path)
    return weights_path


def every_epochs(every: int, score: Callable[[Any], dict]) -> Callable[[int, Any], dict | None] | None:
    """``fit``'s ``on_epoch_end``: every ``every`` epochs, ``score(model)`` with the model in eval
    mode (train mode restored after); ``None`` (no validation) when ``every <= 0``."""
    if every <= 0:
        return None

    def on_epoch_end(epoch: int, model):
        if epoch % every:
            return None
        model.eval()
        try:
            return score(model)
        finally:
            model.train()

    return on_epoch_end


def read_log(out_dir: str | Path) -> list[dict]:
    """The records of ``out_dir/train_log.jsonl``."""
    path = Path(out_dir) / LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
