"""Training through the real CLI with a tiny real BERT: export, reload, logs, resume, bad input."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES, ROOT

DATA = FIXTURES / "sentiment140_300.csv"


def _steps(run: Path) -> list[int]:
    with open(run / "logs" / "steps.csv") as f:
        return [int(r["global_step"]) for r in csv.DictReader(f)]


def test_artifact_is_complete_and_reloads(tiny_run, tiny_artifact):
    from sentiment_core.artifact import load_metadata
    from sentiment_core.scorer import Scorer

    meta = load_metadata(tiny_artifact)
    assert meta["labels"] == ["negative", "positive"] and meta["max_length"] == 64
    assert meta["split"]["seed"] == 42
    assert set(meta["data_fingerprint"]) == {"train", "validation", "test"}
    assert meta["training"]["data"]["splits"]["train"]["rows"] + meta["training"]["data"]["splits"]["validation"]["rows"] \
        + meta["training"]["data"]["splits"]["test"]["rows"] == 300
    assert meta["export_check"]["max_abs_diff"] <= 1e-5
    # the serving signature takes any length: probabilities of the two classes sum to one
    import tensorflow as tf

    sig = tf.saved_model.load(str(tiny_artifact / "saved_model")).signatures["serving_default"]
    for length in (3, 17, 64):
        ids = np.full((2, length), 1000, np.int32)
        out = sig(input_ids=tf.constant(ids), attention_mask=tf.constant(np.ones_like(ids)))
        probs = out["probabilities"].numpy()
        assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-6)
        assert np.allclose(out["score"].numpy(), probs[:, 1])
    # padding does not change a row's score (dynamic padding is safe)
    scorer = Scorer(str(tiny_artifact))
    short, long_ = "so happy today", "this is a much longer tweet about the weather being awful and cold all week"
    alone = scorer.predict_proba([short])[0, 1]
    with_long = scorer.predict_proba([short, long_])[0, 1]
    assert abs(alone - with_long) < 1e-5


def test_logs_and_plots(tiny_run):
    steps = _steps(tiny_run)
    assert steps == sorted(set(steps)) and steps[0] == 2
    with open(tiny_run / "logs" / "epochs.csv") as f:
        epochs = list(csv.DictReader(f))
    assert [e["epoch"] for e in epochs] == ["1", "2"][: len(epochs)] and epochs
    assert list((tiny_run / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("loss_accuracy_per_step.png", "loss_accuracy_per_epoch.png"):
        assert (tiny_run / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reproduces_training_test_split(tiny_artifact, capsys):
    from training.evaluate import main

    assert main(["--model", str(tiny_artifact), "--data", str(DATA), "--split", "test"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    meta = json.loads((tiny_artifact / "metadata.json").read_text())
    assert got["matches_training_split"] is True
    assert got["n"] == meta["metrics"]["test"]["n"]
    assert got["accuracy"] == pytest.approx(meta["metrics"]["test"]["accuracy"])
    assert got["roc_auc"] == pytest.approx(meta["metrics"]["test"]["roc_auc"], abs=1e-6)
    assert list((tiny_artifact / "evaluations").glob("*.json"))


def test_predict_cli(tiny_artifact, capsys):
    from training.predict import main

    assert main(["--model", str(tiny_artifact), "I don't love this weather so much", "great!"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    label, prob, text = lines[0].split("\t")
    assert label in ("negative", "positive") and 0.0 <= float(prob) <= 1.0 and text.startswith("I don't")


def test_finished_run_restarted_prints_its_artifact(tiny_run, tiny_base, capsys):
    from training.train import main

    rc = main(["--data", str(DATA), "--output-dir", str(tiny_run), "--base-model", str(tiny_base), "--epochs", "2",
               "--batch-size", "16", "--learning-rate", "1e-3", "--log-every", "2", "--checkpoint-every", "5"])
    assert rc == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str((tiny_run / "artifact").resolve())


def _train_cmd(out: Path, base: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "training.train", "--data", str(DATA), "--output-dir", str(out),
            "--base-model", str(base), "--epochs", "2", "--batch-size", "16", "--learning-rate", "1e-3",
            "--log-every", "1", "--checkpoint-every", "3", *extra]


def test_killed_run_resumes_from_checkpoint(tmp_path, tiny_base):
    """SIGKILL a real training process after its first checkpoint; the same command resumes there."""
    out = tmp_path / "run"
    # a stand-in for a credential in a user's environment: no log may print it
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TWEET_SENTIMENT_TEST_SECRET": "s3cr3t-value-9f2c"}
    cmd = _train_cmd(out, tiny_base, "--ema-decay", "0.9")  # the weight average's state resumes too
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "checkpoints").glob("ckpt-6.index")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((out / "checkpoints").glob("ckpt-*.index")), "no checkpoint before the kill"
    assert not (out / "artifact").exists()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == str((out / "artifact").resolve())
    for text in (res.stdout, res.stderr, (out / "train.log").read_text()):
        assert "s3cr3t-value-9f2c" not in text
    resumed = [line for line in res.stderr.splitlines() if "resumed from" in line]
    assert resumed, res.stderr[-2000:]
    restored_step = int(resumed[0].split("(global step ")[1].rstrip(")"))
    assert restored_step >= 6
    # every step logged once, none lost or repeated across the kill, and the run is complete
    meta = json.loads((out / "artifact" / "metadata.json").read_text())
    total = meta["training"]["steps_per_epoch"] * 2
    assert _steps(out) == list(range(1, total + 1))
    assert meta["training"]["global_steps"] == total
    # the average went on from its checkpointed state: one update per step of the whole run
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(out / "checkpoints"))
    assert reader.get_tensor("ema/updates/.ATTRIBUTES/VARIABLE_VALUE") == total


@pytest.mark.parametrize("case", ["missing_data", "not_bert", "foreign_output", "changed_settings"])
def test_bad_input_is_one_clear_error(case, tmp_path, tiny_base, tiny_run, capsys):
    from training.train import main

    args = ["--data", str(DATA), "--output-dir", str(tmp_path / "run"), "--base-model", str(tiny_base)]
    if case == "missing_data":
        args[1] = str(tmp_path / "nope.csv")
        expect = "data file not found"
    elif case == "not_bert":
        bad = tmp_path / "roberta"
        bad.mkdir()
        cfg = json.loads((tiny_base / "config.json").read_text())
        (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "roberta"}))
        (bad / "model.safetensors").write_bytes((tiny_base / "model.safetensors").read_bytes())
        (bad / "vocab.txt").write_text("[PAD]\n")
        args[5] = str(bad)
        expect = "not 'bert'"
    elif case == "foreign_output":
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "something.txt").write_text("x")
        expect = "is not a training run"
    else:
        args[3] = str(tiny_run)
        args += ["--learning-rate", "3e-5"]
        expect = "different settings"
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and expect in err[-1]


def test_early_stopped_run_restarted_goes_to_export(tmp_path, tiny_base, monkeypatch, capsys):
    """A run that stopped early and failed (or was killed) before its export trains no further
    epoch when started again: it exports the kept model."""
    from training import export
    from training.train import main

    out = tmp_path / "run"
    args = ["--data", str(DATA), "--output-dir", str(out), "--base-model", str(tiny_base), "--epochs", "3",
            "--batch-size", "32", "--learning-rate", "1e-3", "--patience", "0"]  # 0: stop after the first epoch
    real = export.export_artifact

    def fail(*a, **k):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(export, "export_artifact", fail)
    with pytest.raises(OSError):
        main(args)
    assert not (out / "artifact").exists()
    monkeypatch.setattr(export, "export_artifact", real)
    assert main(args) == 0
    meta = json.loads((out / "artifact" / "metadata.json").read_text())
    t = meta["training"]
    assert t["stopped_early"] and t["global_steps"] == t["steps_per_epoch"] and t["best_epoch"] == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == str((out / "artifact").resolve())


def test_export_check_rows_span_the_split():
    """The export's check rows are spread over the test split, not its head: a labelled file's
    rows are often grouped by label (Sentiment140's negatives come first)."""
    from training.export import spread

    assert spread(10, 4).tolist() == [0, 3, 6, 9]
    assert spread(3, 10).tolist() == [0, 1, 2]
    assert spread(0, 5).tolist() == []
    assert len(spread(4464, 1024)) == 1024


def test_weight_average_tracks_the_steps_and_swaps_back():
    """The average is the warmed-up exponential average of the weights after each step, and
    ``swapped()`` shows it to the model, then gives the model its own weights back exactly."""
    from sentiment_core.tfenv import keras
    from training.model import WeightAverage

    k = keras()
    model = k.Sequential([k.layers.Input((3,)), k.layers.Dense(2)])
    ema = WeightAverage(model, decay=0.9)
    expected = [v.numpy().copy() for v in model.trainable_variables]
    rng = np.random.default_rng(0)
    for n in range(1, 40):
        for v in model.trainable_variables:
            v.assign(rng.normal(size=v.shape).astype(np.float32))
        ema.update()
        d = min(0.9, (1 + n) / (10 + n))
        expected = [d * e + (1 - d) * v.numpy() for e, v in zip(expected, model.trainable_variables)]
    raw = [v.numpy().copy() for v in model.trainable_variables]
    with ema.swapped():
        for v, e in zip(model.trainable_variables, expected):
            np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)
    for v, r in zip(model.trainable_variables, raw):
        np.testing.assert_array_equal(v.numpy(), r)


def test_weight_average_run_keeps_the_better_weights(tmp_path, tiny_base):
    """With --ema-decay each epoch scores the averaged weights beside the raw ones, and each epoch
    after the first the mean of the best weights so far and its own; the kept model is the one
    with the lowest validation loss of all, and it is what the artifact holds."""
    from training.train import main

    out = tmp_path / "run"
    assert main(["--data", str(DATA), "--output-dir", str(out), "--base-model", str(tiny_base), "--epochs", "2",
                 "--batch-size", "16", "--learning-rate", "1e-3", "--ema-decay", "0.9", "--patience", "2"]) == 0
    with open(out / "logs" / "epochs.csv") as f:
        epochs = list(csv.DictReader(f))
    assert len(epochs) == 2 and all(e["val_loss_ema"] and e["val_accuracy_ema"] for e in epochs)
    assert not epochs[0]["val_loss_average"] and epochs[1]["val_loss_average"]
    column = {"raw": "val_loss", "ema": "val_loss_ema", "average": "val_loss_average"}
    losses = {(int(e["epoch"]), kind): float(e[col]) for e in epochs for kind, col in column.items() if e[col]}
    (best_epoch, kind), best = min(losses.items(), key=lambda kv: kv[1])
    meta = json.loads((out / "artifact" / "metadata.json").read_text())
    assert (meta["training"]["best_epoch"], meta["training"]["kept_weights"]) == (best_epoch, kind)
    # the artifact's validation loss is the kept candidate's (the CSV holds 6 significant digits)
    assert abs(meta["metrics"]["validation"]["log_loss"] - best) < 1e-4 * max(1.0, best)


def test_runs_started_before_the_weight_average_still_resume():
    """A run without the average keeps the resume key it had before --ema-decay existed (a
    restart of such a run must not be refused as 'different settings'); with it, the key differs."""
    from training.train import parse_args

    base = ["--data", str(DATA), "--output-dir", "x"]
    assert "ema_decay" not in parse_args(base).resume_key()
    assert parse_args(base + ["--ema-decay", "0.99"]).resume_key()["ema_decay"] == 0.99
    assert "average_best" not in parse_args(base).resume_key()  # on by default since 2026-11-30
    assert parse_args(base + ["--no-average-best"]).resume_key()["average_best"] is False
    assert "shuffle_seed" not in parse_args(base).resume_key()
    assert parse_args(base + ["--shuffle-seed", "3"]).resume_key()["shuffle_seed"] == 3


def test_dense_embedding_gradients_give_the_sparse_update(tiny_base):
    """The train step hands Adam the word embeddings' gradient dense (one fused in-place update)
    rather than as IndexedSlices: from the same weights and batches, both give the same weights
    (clipping aside, which the production optimizer adds)."""
    from sentiment_core.tfenv import keras, tf
    from training import model as M

    t, k = tf(), keras()
    model = M.build_classifier(M.load_encoder(str(tiny_base)), dropout=0.0)
    start = [w.numpy() for w in model.weights]
    before = [v.numpy() for v in model.trainable_variables]
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 1100, size=(8, 12)).astype(np.int32)  # repeated tokens: duplicate slices
    mask = np.ones_like(ids)
    y = rng.integers(0, 2, size=8).astype(np.float32)
    after = {}
    for dense in (False, True):
        model.set_weights(start)
        step = M.make_train_step(model, k.optimizers.Adam(1e-3), t.distribute.get_strategy(), False,
                                 dense_embedding_grads=dense)
        for _ in range(3):
            step(ids, mask, y)
        after[dense] = [v.numpy() for v in model.trainable_variables]
    emb = [i for i, v in enumerate(model.trainable_variables) if "word_embeddings" in v.name]
    assert emb and not np.allclose(after[True][emb[0]], before[emb[0]])  # found, and it moved
    for sparse_w, dense_w in zip(after[False], after[True]):
        np.testing.assert_allclose(dense_w, sparse_w, rtol=1e-5, atol=1e-6)


def test_a_start_that_failed_before_its_first_checkpoint_gives_way_to_the_corrected_command(tmp_path):
    """A wrong column or base model fails after run_config.json is written: the corrected command
    starts over there. Once a checkpoint exists, other settings are refused (resume protection)."""
    from training.train import Run, parse_args

    csv = tmp_path / "t.csv"
    csv.write_text("tweet,sentiment\ngood,positive\nbad,negative\n")
    out = tmp_path / "run"
    first = Run(parse_args(["--data", str(csv), "--output-dir", str(out)]))
    assert first.start() is False
    (out / "data.tmp").mkdir()
    fixed = Run(parse_args(["--data", str(csv), "--output-dir", str(out), "--text-col", "tweet", "--label-col", "sentiment"]))
    assert fixed.start() is False and not (out / "data.tmp").exists()
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "checkpoint").write_text("model_checkpoint_path: \"ckpt-5\"\n")
    with pytest.raises(ValueError, match="different settings"):
        first.start()
    with pytest.raises(ValueError, match="is a file"):
        Run(parse_args(["--data", str(csv), "--output-dir", str(csv)])).start()


def test_predict_reads_bytes_that_are_not_utf8(tiny_artifact):
    res = subprocess.run([sys.executable, "-m", "training.predict", "--model", str(tiny_artifact)], cwd=ROOT,
                         input=b"caf\xe9 is nice\r\ngreat\n", capture_output=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.decode().strip().splitlines()
    assert [line.split("\t")[2] for line in lines] == ["caf\ufffd is nice", "great"]


def _tiny_cli(tiny_base, out, *extra) -> list[str]:
    """tiny_run's command (conftest) with another output directory and extra flags."""
    return ["--data", str(DATA), "--output-dir", str(out), "--base-model", str(tiny_base), "--epochs", "2",
            "--batch-size", "16", "--learning-rate", "1e-3", "--log-every", "2", "--checkpoint-every", "5", *extra]


def test_greedy_soup_adds_a_run_only_where_the_mean_lowers_the_loss():
    """bench.soup: runs ranked by validation loss; each joins the running mean only where it lowers the loss."""
    from bench.soup import Member, greedy_soup

    target = np.array([1.0, 1.0])

    def val_loss(weights):  # the "loss": distance of the weights from a target
        return float(np.abs(weights[0] - target).sum())

    def member(name, w):
        m = Member(Path(name), {}, {}, weights=[np.array(w, dtype=np.float32)])
        m.val_loss = val_loss(m.weights)
        return m

    # alone: a 1.0, b 1.0, c 2.0 (a first of the tie); the mean of a and b is the target; c pulls it away
    runs = [member("a", [0.5, 1.5]), member("b", [1.5, 0.5]), member("c", [2.0, 2.0])]
    weights, chosen, steps = greedy_soup(runs, val_loss)
    assert [m.dir.name for m in chosen] == ["a", "b"]
    np.testing.assert_allclose(weights[0], [1.0, 1.0])
    assert weights[0].dtype == np.float32
    assert [(s["run"], s["joined"]) for s in steps] == [("b", True), ("c", False)]


def test_runs_that_differ_in_shuffle_seed_share_their_split(tmp_path, tiny_base, tiny_run, capsys):
    """--shuffle-seed keeps the split and changes the training; bench.soup combines such runs and
    refuses runs of another split with one line."""
    from bench.soup import main as soup
    from training.train import main

    def cli(out, *extra):  # tiny_run's command (conftest) elsewhere, with more flags
        return ["--data", str(DATA), "--output-dir", str(out), "--base-model", str(tiny_base), "--epochs", "2",
                "--batch-size", "16", "--learning-rate", "1e-3", "--log-every", "2", "--checkpoint-every", "5", *extra]

    other = tmp_path / "other"
    assert main(cli(other, "--shuffle-seed", "7")) == 0
    meta = lambda run: json.loads((run / "artifact" / "metadata.json").read_text())  # noqa: E731
    assert meta(other)["data_fingerprint"] == meta(tiny_run)["data_fingerprint"]
    assert meta(other)["metrics"]["validation"]["log_loss"] != meta(tiny_run)["metrics"]["validation"]["log_loss"]

    capsys.readouterr()
    assert soup(["--run", str(tiny_run), "--run", str(other)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("one run") == 2 and kinds.count("ensemble") == 1 and "greedy soup" in kinds
    ones = {r["runs"][0]: r["val_loss"] for r in rows if r["kind"] == "one run"}
    assert ones[tiny_run.name] == pytest.approx(meta(tiny_run)["metrics"]["validation"]["log_loss"], abs=1e-3)
    greedy = next(r for r in rows if r["kind"] == "greedy soup")
    assert greedy["val_loss"] <= min(ones.values()) + 1e-4

    elsewhere = tmp_path / "elsewhere"
    assert main(cli(elsewhere, "--seed", "43")) == 0
    with pytest.raises(ValueError, match="another split"):
        soup(["--run", str(tiny_run), "--run", str(elsewhere)])
