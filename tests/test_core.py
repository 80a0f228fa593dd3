"""Pure core pieces: tokenisation and padding, text normalisation, metrics, artifact checks."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sentiment_core.metrics import binary_metrics, roc_auc
from sentiment_core.text import tweet_v1


def test_normalization():
    assert tweet_v1("@bob I loooooove it &amp; you http://t.co/x  !") == "@user I looove it & you http !"
    assert tweet_v1("email a@b.com #happy 😀") == "email a@b.com #happy 😀"


def test_metrics_worked_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = binary_metrics(y, p)
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5
    assert m["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    assert roc_auc(y, p) == 0.75  # pairs (pos > neg): (0.4>0.1), (0.9>0.1), (0.9>0.6) of 4
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5


def test_dynamic_padding(tiny_artifact):
    from sentiment_core.tokenization import TextEncoder

    enc = TextEncoder(tiny_artifact / "tokenizer.json", max_length=16)
    ids, mask = enc(["hi", "a much longer sentence with many more tokens in it than the first one by far"])
    assert ids.dtype == np.int32 and mask.dtype == np.int32
    assert ids.shape == (2, 16)  # truncated at max_length
    assert mask[0].sum() == 3 and ids[0, 0] == 101 and ids[0, 2] == 102  # [CLS] hi [SEP]
    ids, mask = enc(["hi", "hello there"])
    assert ids.shape == (2, 8)  # padded to the longest row, rounded up to 8, not to max_length
    batches = list(enc.sorted_batches(["a b c d e f", "x", "y z"], 2))
    assert [list(b[0]) for b in batches] == [[1, 2], [0]]
    assert enc.lowercase is True


def test_artifact_validation_messages(tiny_artifact, tmp_path):
    from sentiment_core.artifact import ArtifactError, load_metadata

    with pytest.raises(ArtifactError, match="not found"):
        load_metadata(tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_artifact, broken)
    meta = json.loads((broken / "metadata.json").read_text())
    (broken / "metadata.json").write_text(json.dumps({**meta, "max_length": 1000}))
    with pytest.raises(ArtifactError, match="max_position_embeddings"):
        load_metadata(broken)
    (broken / "metadata.json").write_text(json.dumps({**meta, "threshold": 1.5}))
    with pytest.raises(ArtifactError, match="threshold"):
        load_metadata(broken)
    (broken / "metadata.json").unlink()
    with pytest.raises(ArtifactError, match="metadata.json is missing"):
        load_metadata(broken)


def test_scoring_partitions_fill_whole_waves():
    from sentiment_core.spark import ROWS_PER_SCORING_TASK as R, scoring_partitions

    assert scoring_partitions(0, 2) == scoring_partitions(R, 2) == 2
    assert scoring_partitions(2 * R + 1, 2) == 4  # 3 tasks' worth on 2 slots: 2 full waves, not 1.5
    assert scoring_partitions(50 * R, 8) == 56
    assert scoring_partitions(10, 0) == 1
