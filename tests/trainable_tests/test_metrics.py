"""P@k against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from trainable.metrics import precision_hits


def test_precision_at_k_matches_hand_computation():
    scores = torch.tensor([
        [0.9, 0.8, 0.1, 0.7, 0.0, 0.2],  # ranking: 0, 1, 3, 5, 2, 4
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # ranking: 5, 4, 3, 2, 1, 0
    ])
    targets = torch.tensor([
        [1, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 1],
    ], dtype=torch.float32)
    assert precision_hits(scores, targets, 1).tolist() == [1.0, 1.0]
    assert precision_hits(scores, targets, 3).tolist() == pytest.approx([2 / 3, 1 / 3])
    assert precision_hits(scores, targets, 5).tolist() == pytest.approx([2 / 5, 1 / 5])


def test_precision_at_k_with_fewer_labels_than_k_keeps_k_in_the_denominator():
    scores = torch.tensor([[0.2, 0.9]])
    targets = torch.tensor([[1.0, 1.0]])
    assert precision_hits(scores, targets, 5).tolist() == [pytest.approx(2 / 5)]
