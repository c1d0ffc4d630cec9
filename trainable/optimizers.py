"""The optimizer table: one entry per optimizer the study compares.

Default learning rates are torch's own. (The study's write-up lists Adadelta 0.01 and Adagrad 1,
swapped against torch; sweetspot keeps torch's values: Adagrad 1e-2, Adadelta 1.0.)
`weight_decay` is always passed explicitly, so AdamW's torch default of 0.01 never silently
differs from Adam's 0.

Example:
    >>> from trainable.optimizers import OPTIMIZERS, default_lr
    >>> default_lr("adadelta")
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True)
class OptimizerSpec:
    """One row of the table: the `torch.optim` class name, torch's default lr, fixed kwargs."""

    torch_class: str
    default_lr: float
    kwargs: dict[str, Any] = field(default_factory=dict)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "adagrad": OptimizerSpec("Adagrad", 1e-2),
    "adadelta": OptimizerSpec("Adadelta", 1.0),
    "adam": OptimizerSpec("Adam", 1e-3),
    "amsgrad": OptimizerSpec("Adam", 1e-3, {"amsgrad": True}),
    "adamw": OptimizerSpec("AdamW", 1e-3),
}


def _spec(name: str) -> OptimizerSpec:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})") from None


def default_lr(name: str) -> float:
    """torch's default learning rate of the optimizer `name`."""
    return _spec(name).default_lr


def build_optimizer(name: str, params: Iterable[Any], *, lr: float, weight_decay: float):
    """Builds `torch.optim.<class>(params, lr=lr, weight_decay=weight_decay, **fixed kwargs)`."""
    import torch  # local: the table itself is readable without torch

    spec = _spec(name)
    cls = getattr(torch.optim, spec.torch_class)
    return cls(params, lr=lr, weight_decay=weight_decay, **spec.kwargs)
