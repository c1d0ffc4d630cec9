"""Result keys: the flat names every package uses for what a trial reports. Defined once here.

The trainable reports them each epoch (`tune.report`), the search orders trials by one of them,
and the analysis reads them back from `result.json`. Pure Python: importing this pulls no torch.
"""

EPOCH = "epoch"  # 1-based number of completed epochs
TRAIN_LOSS = "train_loss"  # mean BCE over the epoch's training documents
VAL_LOSS = "val_loss"  # mean BCE over the validation split
VAL_P1 = "val_p1"  # precision@1 on the validation split
VAL_P3 = "val_p3"
VAL_P5 = "val_p5"
MAJORITY_P1 = "majority_p1"  # P@1 of always predicting the most frequent training label (the floor)
DIVERGED = "diverged"  # 1 when the loss became NaN or inf and the trial stopped

PRECISION_KS = (1, 3, 5)
REPORTED = (EPOCH, TRAIN_LOSS, VAL_LOSS, VAL_P1, VAL_P3, VAL_P5, MAJORITY_P1, DIVERGED)

# Files of a results folder (`<storage_path>/<name>/`), written by the search, read by the analysis.
SUMMARY_FILE = "summary.json"  # run records, rewritten during the search
CONFIG_FILE = "sweetspot.yaml"  # the resolved experiment config
