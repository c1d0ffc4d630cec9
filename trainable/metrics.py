"""Evaluation metrics over a whole evaluation split (plain PyTorch, no Ray).

All functions take `scores` [N, L] (logits; only their order and sign matter, except where a
probability is needed) and `targets` [N, L] multi-hot {0, 1}.

Collapse signals (the study: failed runs map every document to one point and predict the most
frequent labels):
- `pred_entropy`: entropy of the distribution of top-1 predicted labels over the documents,
  divided by log(L). 0 = every document gets the same top label.
- `true_entropy`: the same for the true labels (every true label of every document counts once),
  the reference a healthy model's predictions should approach.
- `mean_bernoulli_entropy`: mean over documents and labels of the binary entropy of the sigmoid
  outputs, in bits (1 = every output at 0.5, 0 = every output certain).
- `distinct_top5`: distinct top-5 label sets / documents (1/N when collapsed).
- `pred_positive`: mean number of labels per document whose sigmoid output reaches the F1
  threshold (0.5): 0 when nothing is predicted anywhere.
- `top_margin`: mean over documents of the top-1 minus the top-2 sigmoid probability. Near 0 the
  top label is noise among near-equal scores (a collapse where *nothing is predicted*); a label that
  tops every document by a clear margin is a collapse *onto that label* (analysis/collapse.py).
- `effective_rank`: exp of the entropy of the normalised singular values of the pooled
  embeddings (RankMe, Garrido et al. 2023): 1 when every document maps to one direction.

The collapse rule over these signals lives in trainable/collapse.py (pure Python, shared with the
analysis).

Example:
    >>> import torch
    >>> scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1]])
    >>> targets = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    >>> precision_hits(scores, targets, 1).tolist()   # top-1 of doc 0 is right, of doc 1 wrong
    [1.0, 0.0]
"""

from __future__ import annotations

import math

import torch


def precision_hits(scores: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Per document, |top-k ∩ true| / k (when L < k the denominator stays k)."""
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices  # [N, k]
    return targets.gather(1, top).sum(dim=1) / k


def ndcg_at_k(scores: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Per document, DCG@k / ideal DCG@k with binary gains (0 for documents without labels)."""
    k = min(k, scores.shape[1])
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float32))  # [k]
    top = scores.topk(k, dim=1).indices
    dcg = (targets.gather(1, top) * discounts).sum(dim=1)
    ideal_hits = targets.sum(dim=1).clamp(max=k).long()  # [N]
    idcg = torch.cumsum(discounts, 0)[(ideal_hits - 1).clamp(min=0)] * (ideal_hits > 0)
    return torch.where(idcg > 0, dcg / idcg.clamp(min=1e-12), torch.zeros_like(dcg))


def f1_scores(scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5) -> tuple[float, float]:
    """(micro F1, macro F1) of `sigmoid(scores) >= threshold`, as scikit-learn's
    `f1_score(average="micro" | "macro", zero_division=0)`.

    Macro F1 averages over all L labels of the training label space (the model's outputs): a label
    neither true nor predicted in the split scores 0, like a missed one. (Averaging over the labels
    present only would give 1.0 where scikit-learn gives 0.01 on a 100-label split with one label.)
    """
    pred = (torch.sigmoid(scores) >= threshold).float()
    tp = (pred * targets).sum(0)  # [L]
    fp = (pred * (1 - targets)).sum(0)
    fn = ((1 - pred) * targets).sum(0)
    micro_den = 2 * tp.sum() + fp.sum() + fn.sum()
    micro = float(2 * tp.sum() / micro_den) if micro_den > 0 else 0.0
    den = 2 * tp + fp + fn
    per_label = torch.where(den > 0, 2 * tp / den.clamp(min=1), torch.zeros_like(tp))  # [L], 0/0 -> 0
    return micro, float(per_label.mean()) if per_label.numel() else 0.0


def _normalised_entropy(counts: torch.Tensor) -> float:
    """Entropy of a count vector over L outcomes, divided by log(L) (so it lies in [0, 1])."""
    total = counts.sum()
    if total <= 0 or counts.numel() < 2:
        return 0.0
    p = counts[counts > 0] / total
    return max(0.0, float(-(p * p.log()).sum() / math.log(counts.numel())))  # max: no -0.0


def pred_entropy(scores: torch.Tensor) -> float:
    return _normalised_entropy(torch.bincount(scores.argmax(dim=1), minlength=scores.shape[1]).float())


def true_entropy(targets: torch.Tensor) -> float:
    return _normalised_entropy(targets.sum(dim=0))


def top_label(scores: torch.Tensor) -> int:
    """The label most often predicted first (what a collapsed model predicts for everything)."""
    return int(torch.bincount(scores.argmax(dim=1), minlength=scores.shape[1]).argmax())


def pred_positive(scores: torch.Tensor, threshold: float = 0.5) -> float:
    """Mean over documents of the labels with `sigmoid(score) >= threshold` (the F1 threshold)."""
    return float((torch.sigmoid(scores) >= threshold).sum(dim=1).float().mean()) if len(scores) else 0.0


def top_margin(scores: torch.Tensor) -> float:
    """Mean over documents of the highest minus the second-highest sigmoid probability (0 with one label).

    Example:
        >>> round(top_margin(torch.tensor([[0.0, -2.0, -9.0], [3.0, 3.0, 0.0]])), 3)  # 0.5 - 0.119, then a tie
        0.19
    """
    if scores.shape[1] < 2 or not len(scores):
        return 0.0
    top = torch.sigmoid(scores.double()).topk(2, dim=1).values  # [N, 2]
    return float((top[:, 0] - top[:, 1]).mean())


def mean_bernoulli_entropy(scores: torch.Tensor) -> float:
    p = torch.sigmoid(scores.double()).clamp(1e-12, 1 - 1e-12)
    h = -(p * p.log2() + (1 - p) * (1 - p).log2())
    return float(h.mean())


def distinct_top5(scores: torch.Tensor) -> float:
    top = scores.topk(min(5, scores.shape[1]), dim=1).indices.sort(dim=1).values
    return len({tuple(row) for row in top.tolist()}) / max(len(top), 1)


def effective_rank(embeddings: torch.Tensor) -> float:
    """RankMe: exp(entropy of singular values / their sum) of an [n, H] embedding matrix."""
    s = torch.linalg.svdvals(embeddings.double())
    p = s / s.sum().clamp(min=1e-12) + 1e-12
    return float(torch.exp(-(p * p.log()).sum()))
