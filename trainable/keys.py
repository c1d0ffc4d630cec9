"""Result keys: the flat names every package uses for what a trial reports. Defined once here.

The trainable reports them each epoch (`tune.report`), the search orders trials by one of them,
and the analysis reads them back from `result.json`. Pure Python: importing this pulls no torch.
"""

EPOCH = "epoch"  # completed epochs (fractional for reports every N steps)
STEP = "step"  # optimizer steps taken
TRAIN_LOSS = "train_loss"  # mean BCE over the epoch's training documents (so far, at a mid-epoch report)
TRAIN_LOSS_RECENT = "train_loss_recent"  # mean BCE over the steps since the previous report
GRAD_NORM = "grad_norm"  # mean global L2 norm of the gradients (before clipping) over the steps since the previous report
PRIOR_BCE = "prior_bce"  # the label-prior plateau: training BCE of predicting each label at its training rate
VAL_LOSS = "val_loss"  # mean BCE over the validation split
VAL_P1 = "val_p1"  # precision@1 on the validation split
VAL_P3 = "val_p3"
VAL_P5 = "val_p5"
VAL_NDCG1 = "val_ndcg1"
VAL_NDCG3 = "val_ndcg3"
VAL_NDCG5 = "val_ndcg5"
VAL_MICRO_F1 = "val_micro_f1"  # threshold 0.5 on sigmoid outputs
VAL_MACRO_F1 = "val_macro_f1"

# Collapse signals (see trainable/metrics.py for definitions).
VAL_PRED_ENTROPY = "val_pred_entropy"  # entropy of the top-1 predicted label distribution / log(L); 0 = one label for all
VAL_TRUE_ENTROPY = "val_true_entropy"  # the same for the documents' true labels (the reference)
VAL_MEAN_BERNOULLI_ENTROPY = "val_mean_bernoulli_entropy"  # mean per-document entropy of the sigmoid outputs
VAL_DISTINCT_TOP5 = "val_distinct_top5"  # distinct top-5 label sets / documents
VAL_EMBED_RANK = "val_embed_rank"  # effective rank (RankMe) of pooled embeddings on <= 512 documents
VAL_TOP_LABEL = "val_top_label"  # the most frequent top-1 predicted label id (what a collapsed run predicts)
VAL_PRED_POSITIVE = "val_pred_positive"  # mean labels per document with sigmoid >= 0.5 (0 = nothing predicted)
VAL_TOP_MARGIN = "val_top_margin"  # mean over documents of the top-1 minus the top-2 probability (near 0: a noise top label)
COLLAPSED = "collapsed"  # 1 when the collapse rule holds at this evaluation
MAJORITY_P1 = "majority_p1"  # P@1 of always predicting the most frequent training label (the floor)
DIVERGED = "diverged"  # 1 when the loss became NaN or inf and the trial stopped
NODE_ID = "node_id"  # the Ray node the trial ran on
SEED = "seed"  # the trial's effective seed (search.seeds runs a configuration with several)
# n when this evaluation improved the trial's score (trainable/score.py) for the n-th time, else 0: the
# report with the highest n is the one whose checkpoint is kept as the best (sweetspot/layout.py, best_checkpoint).
IMPROVEMENT = "improvement"

PRECISION_KS = (1, 3, 5)
REPORTED = (
    EPOCH,
    STEP,
    TRAIN_LOSS,
    TRAIN_LOSS_RECENT,
    GRAD_NORM,
    PRIOR_BCE,
    VAL_LOSS,
    VAL_P1,
    VAL_P3,
    VAL_P5,
    VAL_NDCG1,
    VAL_NDCG3,
    VAL_NDCG5,
    VAL_MICRO_F1,
    VAL_MACRO_F1,
    VAL_PRED_ENTROPY,
    VAL_TRUE_ENTROPY,
    VAL_MEAN_BERNOULLI_ENTROPY,
    VAL_DISTINCT_TOP5,
    VAL_EMBED_RANK,
    VAL_TOP_LABEL,
    VAL_PRED_POSITIVE,
    VAL_TOP_MARGIN,
    COLLAPSED,
    MAJORITY_P1,
    DIVERGED,
    NODE_ID,
    SEED,
    IMPROVEMENT,
)
TEST_PREFIX = "test_"  # with train.eval_test, every val_* metric also exists as test_*
TEST_KEYS = tuple(TEST_PREFIX + k.removeprefix("val_") for k in REPORTED if k.startswith("val_"))
# The results folder's file names and parsing: sweetspot/layout.py.
