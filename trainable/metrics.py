"""Evaluation metrics over score matrices (plain PyTorch, no Ray).

Example:
    >>> import torch
    >>> scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1]])
    >>> targets = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    >>> precision_hits(scores, targets, 1).tolist()   # top-1 of doc 0 is right, of doc 1 wrong
    [1.0, 0.0]
"""

from __future__ import annotations

import torch


def precision_hits(scores: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Per document, the share of its top-k scored labels that are true: |top-k ∩ true| / k.

    Args:
        scores: [N, L] logits or probabilities.
        targets: [N, L] multi-hot {0, 1}.
        k: Cut-off; when L < k, the denominator stays k (the usual P@k convention).
    """
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices  # [N, k]
    return targets.gather(1, top).sum(dim=1) / k
