"""Metrics and collapse signals against hand-computed values on small constructed examples."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import f1_score

from sweetspot.trainable import metrics
from sweetspot.trainable.collapse import is_collapsed

SCORES = torch.tensor(
    [
        [0.9, 0.8, -0.1, 0.7, -2.0, 0.2],  # ranking: 0, 1, 3, 5, 2, 4
        [-0.1, -0.2, -0.3, -0.4, 0.5, 0.6],  # ranking: 5, 4, 0, 1, 2, 3
    ]
)
TARGETS = torch.tensor(
    [
        [1, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 1],
    ],
    dtype=torch.float32,
)


def test_precision_at_k():
    assert metrics.precision_hits(SCORES, TARGETS, 1).tolist() == [1.0, 1.0]
    assert metrics.precision_hits(SCORES, TARGETS, 3).tolist() == pytest.approx([2 / 3, 1 / 3])
    assert metrics.precision_hits(SCORES, TARGETS, 5).tolist() == pytest.approx([2 / 5, 1 / 5])
    # Fewer labels than k: the denominator stays k.
    assert metrics.precision_hits(torch.tensor([[0.2, 0.9]]), torch.tensor([[1.0, 1.0]]), 5).tolist() == [pytest.approx(2 / 5)]


def test_ndcg_at_k():
    # doc 0: gains at ranks 1 and 3 -> DCG@3 = 1 + 1/log2(4) = 1.5; ideal (2 labels) = 1 + 1/log2(3).
    ideal = 1 + 1 / math.log2(3)
    assert metrics.ndcg_at_k(SCORES, TARGETS, 3).tolist() == pytest.approx([1.5 / ideal, 1.0])
    assert metrics.ndcg_at_k(SCORES, TARGETS, 1).tolist() == pytest.approx([1.0, 1.0])
    # doc 0 at k=5: the same hits, same ideal.
    assert metrics.ndcg_at_k(SCORES, TARGETS, 5)[0].item() == pytest.approx(1.5 / ideal)


def test_micro_and_macro_f1_at_threshold_half():
    # sigmoid >= 0.5 <=> score >= 0. Predicted: doc0 {0,1,3,5}, doc1 {4,5}.
    # label 0: tp1; 1: fp1; 3: tp1; 4: fp1; 5: tp1 (doc1) + fp1 (doc0). TP=3, FP=3, FN=0.
    micro, macro = metrics.f1_scores(SCORES, TARGETS)
    assert micro == pytest.approx(2 * 3 / (2 * 3 + 3 + 0))
    per_label = {0: 1.0, 1: 0.0, 2: 0.0, 3: 1.0, 4: 0.0, 5: 2 / 3}  # label 2 neither true nor predicted: 0
    assert macro == pytest.approx(sum(per_label.values()) / len(per_label))


def _sklearn_f1(scores, targets):
    pred = (torch.sigmoid(scores) >= 0.5).int().numpy()
    true = targets.int().numpy()
    return tuple(f1_score(true, pred, average=a, zero_division=0) for a in ("micro", "macro"))


def _toy_one_label_of_100():
    """100 labels, 4 documents: only label 7 is true, and it is predicted exactly."""
    targets = torch.zeros(4, 100)
    targets[:, 7] = 1
    return torch.where(targets > 0, 3.0, -3.0), targets


EDGE_CASES = {
    "one-label-of-100": _toy_one_label_of_100(),
    "no-positives-none-predicted": (torch.full((5, 6), -2.0), torch.zeros(5, 6)),
    "no-positives-all-predicted": (torch.full((5, 6), 2.0), torch.zeros(5, 6)),
    "all-predicted": (torch.full((5, 6), 2.0), (torch.arange(30).reshape(5, 6) % 4 == 0).float()),
    "all-true-all-predicted": (torch.full((3, 4), 1.0), torch.ones(3, 4)),
    "score-exactly-at-threshold": (torch.zeros(3, 4), torch.eye(3, 4)),
}


@pytest.mark.parametrize("case", EDGE_CASES, ids=list(EDGE_CASES))
def test_f1_matches_scikit_learn_on_edge_cases(case):
    scores, targets = EDGE_CASES[case]
    assert metrics.f1_scores(scores, targets) == pytest.approx(_sklearn_f1(scores, targets), abs=1e-6)


def test_macro_f1_counts_labels_neither_true_nor_predicted_as_zero():
    # Averaging over the labels present would give 1.0 here; scikit-learn (and the study's L outputs) give 1/100.
    micro, macro = metrics.f1_scores(*_toy_one_label_of_100())
    assert micro == 1.0 and macro == pytest.approx(0.01)


@pytest.mark.parametrize("seed", range(5))
def test_f1_matches_scikit_learn_on_random_multilabel_data(seed):
    g = torch.Generator().manual_seed(seed)
    n, labels = (
        int(torch.randint(1, 40, (1,), generator=g)),
        int(torch.randint(2, 60, (1,), generator=g)),
    )  # L=1: scikit-learn reads a binary column
    # Sparse targets, as in multi-label data: most labels absent from a small split.
    targets = (torch.rand(n, labels, generator=g) < 0.08).float()
    scores = torch.randn(n, labels, generator=g) * 2 - 2 + 3 * targets * (torch.rand(n, labels, generator=g) < 0.7)
    assert metrics.f1_scores(scores, targets) == pytest.approx(_sklearn_f1(scores, targets), abs=1e-6)


def test_collapse_signals():
    # Top-1 predictions: doc0 -> 0, doc1 -> 5: two labels used once each out of L = 6.
    assert metrics.pred_entropy(SCORES) == pytest.approx(math.log(2) / math.log(6))
    # True labels: 0, 3, 5 once each.
    assert metrics.true_entropy(TARGETS) == pytest.approx(math.log(3) / math.log(6))
    constant = torch.tensor([[0.0, 3.0, -1.0]] * 4)
    assert metrics.pred_entropy(constant) == 0.0
    assert metrics.top_label(constant) == 1
    assert metrics.distinct_top5(constant) == 0.25
    assert metrics.distinct_top5(SCORES) == 1.0
    # Bernoulli entropy in bits: every output at 0.5 -> 1 bit.
    assert metrics.mean_bernoulli_entropy(torch.zeros(3, 4)) == pytest.approx(1.0)
    p = torch.sigmoid(torch.tensor(2.0)).item()
    assert metrics.mean_bernoulli_entropy(torch.full((2, 2), 2.0)) == pytest.approx(
        -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    )


def test_effective_rank():
    assert metrics.effective_rank(torch.ones(8, 5)) == pytest.approx(1.0, abs=1e-6)  # all documents one point
    assert metrics.effective_rank(torch.eye(4)) == pytest.approx(4.0, abs=1e-6)  # four equal directions
    s = torch.tensor([3.0, 1.0])  # diag(3, 1): p = (0.75, 0.25)
    assert metrics.effective_rank(torch.diag(s)) == pytest.approx(
        math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))), rel=1e-6
    )


def test_collapse_rule_needs_constant_predictions_and_a_collapsed_representation():
    common = dict(true_entropy=0.8, majority_p1=0.33, entropy_fraction=0.2, p1_margin=0.01)
    assert is_collapsed(pred_entropy=0.0, p1=0.33, embed_rank=1.0, **common)
    assert is_collapsed(pred_entropy=0.0, p1=0.40, embed_rank=1.0, **common)  # one label above the floor's: still collapsed
    assert not is_collapsed(pred_entropy=0.0, p1=0.33, embed_rank=12.0, **common)  # the label-prior plateau
    assert not is_collapsed(pred_entropy=0.5, p1=0.30, embed_rank=1.0, **common)  # weak, but not one label
    # Rows recorded without the embedding rank: the rule they were recorded under (P@1 at the floor)
    assert is_collapsed(pred_entropy=0.15, p1=0.335, embed_rank=None, **common)
    assert not is_collapsed(pred_entropy=0.0, p1=0.40, embed_rank=None, **common)


def test_predicted_positives_and_the_top_margin_tell_a_label_from_noise():
    # SCORES: doc0 has 0.9, 0.8, 0.7, 0.2 >= 0 (sigmoid >= 0.5); doc1 has 0.5 and 0.6.
    assert metrics.pred_positive(SCORES) == pytest.approx(3.0)
    s = torch.sigmoid(SCORES)
    assert metrics.top_margin(SCORES) == pytest.approx(float(((s[0, 0] - s[0, 1]) + (s[1, 5] - s[1, 4])) / 2), rel=1e-5)
    # Collapsed onto a label the model believes in (GoEmotions' neutral at its prior, ~0.33, below the
    # threshold): nothing reaches 0.5, but the label stands clear of the rest.
    onto = torch.logit(torch.tensor([[0.33, 0.10, 0.05, 0.02]] * 5))
    assert metrics.pred_positive(onto) == 0.0 and metrics.top_margin(onto) == pytest.approx(0.23)
    # Nothing predicted: every probability pushed down to about the same value, the top label by a hair.
    noise = torch.logit(torch.tensor([[0.0011, 0.0010, 0.0010, 0.0009]] * 5))
    assert metrics.pred_positive(noise) == 0.0 and metrics.top_margin(noise) == pytest.approx(1e-4, abs=1e-6)
    assert metrics.top_margin(torch.zeros(3, 1)) == 0.0  # one label: no runner-up
