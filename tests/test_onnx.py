"""The artifact's ONNX Runtime backends (training.onnx_export, sentiment_core.scorer): written at
export from the trained weights, checked against the SavedModel, chosen by ``auto`` on CPU, and
refused when missing or tampered with."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from jobs import score as job
from sentiment_core.artifact import ArtifactError
from tests.conftest import FIXTURES

V1_SAMPLE = FIXTURES / "archives" / "v1_sample.jsonl"
TEXTS = ["I love this so much!!! :)", "worst day ever, everything broke", "ok", "",
         "@someone http://t.co/x &amp; sooo gooood", "word " * 200, "日本語のツイート 🎉"]


def _texts_from_fixture() -> list[str]:
    out = []
    for line in V1_SAMPLE.read_text().splitlines():
        obj = json.loads(line)
        if "text" in obj:
            out.append(obj.get("extended_tweet", {}).get("full_text") or obj["text"])
    return out


def test_export_records_checked_backends(tiny_artifact):
    meta = json.loads((tiny_artifact / "metadata.json").read_text())
    b = meta["backends"]
    for name, fname in (("onnx", "model.onnx"), ("onnx-int8", "model.int8.onnx"), ("onnx-fp16", "model.fp16.onnx")):
        assert b[name]["file"] == fname and (tiny_artifact / fname).is_file()
        assert b[name]["check"]["rows"] > 0
        # the GPU graph's metrics: over the check rows (float16 on CPU is slow for a whole split)
        metrics = b[name]["check_metrics" if name == "onnx-fp16" else "test_metrics"]
        assert set(metrics) >= {"accuracy", "f1", "roc_auc"} and metrics["n"] == (
            b[name]["check"]["rows"] if name == "onnx-fp16" else b["onnx"]["test_metrics"]["n"])
    assert b["onnx"]["check"]["max_abs_diff"] <= 1e-4
    assert b["onnx-fp16"]["check"]["max_abs_diff"] <= 1e-2


def test_fp16_backend_and_gpu_choice(tiny_artifact, monkeypatch, caplog):
    """The fp16 graph (the GPU backend): encoder weights in float16, pooling and head in float32,
    scores close to the SavedModel's (it runs on CPU too); ``auto`` picks it for a GPU only where
    onnxruntime has the CUDA provider; an ONNX backend asked for on a GPU without that provider
    scores on CPU and says why."""
    import onnx

    from sentiment_core import scorer as S

    g = onnx.load(str(tiny_artifact / "model.fp16.onnx")).graph
    types = {t.name: t.data_type for t in g.initializer}
    assert types["word_emb"] == types["l0_qkv_w"] == onnx.TensorProto.FLOAT16
    assert types["head_w"] == onnx.TensorProto.FLOAT
    assert [i.type.tensor_type.elem_type for i in g.input] == [onnx.TensorProto.INT32] * 2
    texts = TEXTS + _texts_from_fixture()
    ref = S.Scorer(str(tiny_artifact), backend="tf").predict_proba(texts)
    half = S.Scorer(str(tiny_artifact), backend="onnx-fp16")
    assert half.device == "cpu"
    got = half.predict_proba(texts)
    assert 0 < np.abs(got - ref).max() <= 1e-2  # float16, not a copy of the fp32 graph

    meta = S.load_metadata(tiny_artifact)
    assert not S.ort_cuda_available()  # this machine's onnxruntime is the CPU build
    assert S.resolve_backend(meta, "auto", gpu=True) == "tf"
    monkeypatch.setattr(S, "ort_cuda_available", lambda: True)
    assert S.resolve_backend(meta, "auto", gpu=True) == "onnx-fp16"
    assert S.resolve_backend(meta, "auto", gpu=False) == "onnx"
    monkeypatch.undo()
    with caplog.at_level("WARNING", logger="sentiment_core.scorer"):
        on_cpu = S.Scorer(str(tiny_artifact), device="/GPU:0", backend="onnx")
    assert on_cpu.device == "cpu" and "no CUDA provider" in caplog.text
    assert on_cpu.batch_size == S.GPU_BATCH_SIZE  # a GPU task's default, whatever runs it
    np.testing.assert_allclose(on_cpu.predict_proba(texts), ref, atol=1e-5)

    # onnxruntime-gpu installed but its CUDA libraries missing: ONNX Runtime would fall back to CPU
    # quietly; the scorer says what is wrong instead (here the CPU build plays that part)
    monkeypatch.setattr(S, "ort_cuda_available", lambda: True)
    with pytest.raises(ArtifactError, match="could not start its CUDA provider on GPU 1"):
        S.Scorer(str(tiny_artifact), device="/GPU:1", backend="onnx-fp16")
    monkeypatch.undo()

    assert S.gpu_index(None) == 0 and S.gpu_index("3") == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # Spark's physical address -> this process's index
    assert S.gpu_index("3") == 1


def test_backends_agree_with_saved_model(tiny_artifact):
    from sentiment_core.scorer import Scorer

    texts = TEXTS + _texts_from_fixture()
    ref = Scorer(str(tiny_artifact), backend="tf").predict_proba(texts)
    auto = Scorer(str(tiny_artifact))
    assert auto.backend == "onnx"
    got = auto.predict_proba(texts)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-5
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)
    int8 = Scorer(str(tiny_artifact), backend="onnx-int8").predict_proba(texts)
    assert np.abs(int8 - ref).max() < 0.2  # quantized: close, not equal
    s, labels = auto.score(texts)
    assert s.dtype == np.float32 and set(labels) <= {"negative", "positive"}


def test_tampered_or_missing_backend(tiny_artifact, tmp_path):
    from sentiment_core.scorer import Scorer

    art = tmp_path / "art"
    shutil.copytree(tiny_artifact, art)
    with open(art / "model.onnx", "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\x00" * 8)
    with pytest.raises(ArtifactError, match="sha256"):
        Scorer(str(art), backend="onnx")

    # an artifact exported before the ONNX backends existed: auto scores with TF, an explicit
    # request says how to add them, and adding them gives the same scores as TF
    meta = json.loads((art / "metadata.json").read_text())
    meta.pop("backends")
    (art / "metadata.json").write_text(json.dumps(meta))
    for f in ("model.onnx", "model.int8.onnx", "model.fp16.onnx"):
        (art / f).unlink()
    assert Scorer(str(art)).backend == "tf"
    with pytest.raises(ArtifactError, match="training.onnx_export"):
        Scorer(str(art), backend="onnx")

    from training.onnx_export import add_to_artifact

    labels = [i % 2 for i in range(len(TEXTS))]
    backends = add_to_artifact(str(art), TEXTS, labels)
    assert "onnx" in backends and backends["onnx"]["check"]["max_abs_diff"] <= 1e-4
    for name in ("onnx", "onnx-int8", "onnx-fp16"):  # labelled check rows: each backend's metrics on them
        assert backends[name]["check_metrics"]["n"] == len(TEXTS)
    import onnx

    ops = {n.op_type for n in onnx.load(str(art / "model.int8.onnx")).graph.node}
    assert "FastGelu" in ops and "BiasGelu" not in ops  # tanh GELU in the int8 graph only
    assert "BiasGelu" in {n.op_type for n in onnx.load(str(art / "model.onnx")).graph.node}
    texts = _texts_from_fixture()
    ref = Scorer(str(art), backend="tf").predict_proba(texts)
    assert np.abs(Scorer(str(art), backend="onnx").predict_proba(texts) - ref).max() <= 1e-5


def test_job_backends_give_the_same_output(spark, tiny_artifact, tmp_path):
    rows = {}
    for backend in ("tf", "onnx"):
        out = tmp_path / backend
        summary = job.run(job.parse_args(["--input", str(V1_SAMPLE), "--model", str(tiny_artifact),
                                          "--output", str(out), "--backend", backend]), spark=spark)
        assert summary["reconciled"] is True and summary["config"]["backend"] == backend
        rows[backend] = spark.read.parquet(str(out / "scores")).toPandas().sort_values("tweet_id").reset_index(drop=True)
    a, b = rows["tf"], rows["onnx"]
    assert len(a) == len(b) > 0
    assert a["tweet_id"].tolist() == b["tweet_id"].tolist()
    assert np.abs(a["score"].to_numpy() - b["score"].to_numpy()).max() <= 1e-5
    assert a["label"].tolist() == b["label"].tolist()


def test_job_refuses_missing_backend_before_spark(tiny_artifact, tmp_path, capsys):
    art = tmp_path / "art"
    shutil.copytree(tiny_artifact, art)
    meta = json.loads((art / "metadata.json").read_text())
    meta["backends"].pop("onnx-int8")
    (art / "metadata.json").write_text(json.dumps(meta))
    rc = job.main(["--input", str(V1_SAMPLE), "--model", str(art), "--output", str(tmp_path / "o"),
                   "--backend", "onnx-int8"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "no onnx-int8 backend" in err
    assert not (tmp_path / "o").exists()


def test_each_distinct_text_scored_once(tiny_artifact):
    """Repeats of a text (retweets; or texts equal after normalisation, which is what the model
    sees) go through the model once, and every repeat gets that row's scores, as if scored alone."""
    from sentiment_core.scorer import Scorer
    from sentiment_core.text import normalize_all

    scorer = Scorer(str(tiny_artifact), backend="onnx")
    texts = TEXTS + _texts_from_fixture()
    repeated = texts + texts[::2] + [f"  {texts[0]}\n"]  # the last equals texts[0] once whitespace is collapsed
    rows: list[int] = []
    forward = scorer._forward
    scorer._forward = lambda ids, mask: (rows.append(len(ids)), forward(ids, mask))[1]
    once = scorer.predict_proba(repeated)
    assert sum(rows) == len(set(normalize_all(repeated, scorer.normalization))) < len(repeated)
    rows.clear()
    every = scorer.predict_proba(repeated, dedup=False)
    assert sum(rows) == len(repeated)
    np.testing.assert_allclose(once, every, atol=1e-6)
    assert (once[len(texts):len(texts) + len(texts[::2])] == once[:len(texts)][::2]).all()
    assert (once[-1] == once[0]).all()
