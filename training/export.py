"""Evaluate the in-memory model and export it as the artifact of ``sentiment_core.artifact``."""
from __future__ import annotations

import datetime as dt
import json
import logging
import platform
import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from sentiment_core import artifact as A
from sentiment_core.metrics import best_threshold, binary_metrics
from sentiment_core.tfenv import tf

log = logging.getLogger(__name__)

LABELS = ["negative", "positive"]
EXPORT_CHECK_ROWS = 256
EXPORT_TOLERANCE = 1e-4
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def predict_arrays(model) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """(input_ids, attention_mask) -> positive-class probabilities, through a compiled function."""
    t = tf()

    spec = t.TensorSpec([None, None], t.int32)

    @t.function(input_signature=[spec, spec])
    def f(ids, mask):
        return t.cast(model([ids, mask], training=False), t.float32)

    return lambda ids, mask: f(t.constant(ids), t.constant(mask)).numpy()[:, 0]


def probabilities(predict, encoder, texts: Sequence[str], normalization: str, batch_size: int = 128) -> np.ndarray:
    from sentiment_core.text import normalize_all

    texts = normalize_all(texts, normalization)
    out = np.zeros(len(texts), dtype=np.float32)
    for idx, ids, mask in encoder.sorted_batches(texts, batch_size):
        out[idx] = predict(ids, mask)
    return out


def evaluate_arrays(predict, encoder, texts, y, normalization: str, threshold: float = 0.5) -> dict:
    return binary_metrics(y, probabilities(predict, encoder, texts, normalization), threshold)


def library_versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("tensorflow", "tensorflow-cpu", "tf-keras", "transformers", "tokenizers", "numpy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def save_serving_model(model, path: Path) -> None:
    """SavedModel with signature serving_default(input_ids, attention_mask) -> score, probabilities."""
    t = tf()

    class Serving(t.Module):
        def __init__(self, m):
            super().__init__()
            self.model = m

        @t.function(input_signature=[t.TensorSpec([None, None], t.int32, name="input_ids"),
                                     t.TensorSpec([None, None], t.int32, name="attention_mask")])
        def serve(self, input_ids, attention_mask):
            p = t.cast(self.model([input_ids, attention_mask], training=False), t.float32)[:, 0]
            return {"score": p, "probabilities": t.stack([1.0 - p, p], axis=1)}

    module = Serving(model)
    t.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def export_artifact(run, model, encoder, tok_dir: Path, base_cfg: dict, info: dict) -> Path:
    """Evaluate on validation and test, write the artifact to a staging dir, reload it through the
    production scorer and compare its predictions with the in-memory model, then publish."""
    from training.data import read_split

    cfg = run.cfg
    predict = predict_arrays(model)
    _, val_texts, val_y = read_split(run.data_dir, "validation")
    test_ids, test_texts, test_y = read_split(run.data_dir, "test")
    val_p = probabilities(predict, encoder, val_texts, cfg.normalization)
    test_p = probabilities(predict, encoder, test_texts, cfg.normalization)
    threshold = best_threshold(val_y, val_p) if cfg.tune_threshold else 0.5
    metrics = {"validation": binary_metrics(val_y, val_p, threshold), "test": binary_metrics(test_y, test_p, threshold)}
    log.info("test metrics at threshold %.2f: %s", threshold, json.dumps(metrics["test"]))

    if run.artifact_dir.exists():
        raise A.ArtifactError(f"artifact directory already exists: {run.artifact_dir}; artifacts are immutable - "
                              "choose another --output-dir or remove it")
    staging = A.staging_dir(run.artifact_dir)
    save_serving_model(model, staging / A.SAVED_MODEL)
    for name in TOKENIZER_FILES:
        if (tok_dir / name).exists():
            shutil.copy2(tok_dir / name, staging / name)
    created = dt.datetime.now(dt.timezone.utc)
    base_name = str(base_cfg.get("_name_or_path") or cfg.base_model).rstrip("/").split("/")[-1] or "bert"
    digest = A.files_sha256(sorted((staging / A.SAVED_MODEL / "variables").glob("*")))
    version = f"{base_name}-{created:%Y%m%dT%H%M%SZ}-{digest[:8]}"
    tok_cfg = json.loads((tok_dir / "tokenizer_config.json").read_text()) if (tok_dir / "tokenizer_config.json").exists() else {}
    meta = {
        "format_version": A.FORMAT_VERSION,
        "model_version": version,
        "base_model": cfg.base_model,
        "base_model_config": {k: base_cfg.get(k) for k in ("_name_or_path", "num_hidden_layers", "hidden_size",
                                                            "num_attention_heads", "vocab_size")},
        "max_length": cfg.max_length,
        "max_position_embeddings": int(base_cfg.get("max_position_embeddings", 512)),
        "labels": LABELS,
        "positive_label": "positive",
        "threshold": threshold,
        "normalization": cfg.normalization,
        "do_lower_case": bool(tok_cfg.get("do_lower_case", encoder.lowercase)),
        "pooling": cfg.pooling,
        "created_at": created.isoformat(),
        "training": info,
        "data_fingerprint": {s: v["fingerprint"] for s, v in info["data"]["splits"].items()},
        "split": {"seed": cfg.seed, "fractions": [0.8, 0.1, 0.1], "max_rows": cfg.max_rows,
                  "method": "blake2b(seed, id) of each row"},
        "metrics": metrics,
        "library_versions": library_versions(),
    }
    (staging / A.METADATA).write_text(json.dumps(meta, indent=2, default=_json_default))

    # Reload through the production scoring path and compare with the in-memory model.
    from sentiment_core.scorer import Scorer

    rows = spread(len(test_texts), EXPORT_CHECK_ROWS)
    sample = [test_texts[i] for i in rows]
    reference = Scorer(str(staging), backend="tf")
    reloaded = reference.predict_proba(sample)[:, 1]
    diff = float(np.max(np.abs(reloaded - np.asarray(test_p)[rows]))) if sample else 0.0
    if diff > EXPORT_TOLERANCE:
        shutil.rmtree(staging, ignore_errors=True)
        raise A.ArtifactError(f"exported model disagrees with the trained model: max |diff| {diff:.2e} > "
                              f"{EXPORT_TOLERANCE:.0e} on {len(sample)} test rows; export aborted")
    meta["export_check"] = {"rows": len(sample), "max_abs_diff": diff}
    meta["backends"] = _onnx_backends(staging, model, cfg.pooling, reference, test_texts, test_y, threshold)
    (staging / A.METADATA).write_text(json.dumps(meta, indent=2, default=_json_default))
    final = A.publish(staging, run.artifact_dir)
    log.info("exported %s (reload check: max |diff| %.2e over %d rows)", final, diff, len(sample))
    return final.resolve()


def _onnx_backends(staging: Path, model, pooling: str, reference, test_texts, test_y, threshold: float) -> dict:
    """model.onnx / model.int8.onnx / model.fp16.onnx from the trained weights, each checked against
    the exported SavedModel; the test metrics of each go into the metadata so a user can weigh
    int8's speed (and fp16's, on a GPU) against its accuracy (fp16's over the check rows only)."""
    from training.onnx_export import CHECK_ROWS, bert_weights, write_backends

    heads, eps = None, 1e-12
    for layer in model.layers:
        if hasattr(layer, "config") and hasattr(layer.config, "num_attention_heads"):
            heads, eps = int(layer.config.num_attention_heads), float(layer.config.layer_norm_eps)
    if heads is None:
        return {"onnx_error": "no BERT layer with a config found in the model"}

    rows = spread(len(test_texts), CHECK_ROWS)
    check = [test_texts[i] for i in rows]

    def evaluate(name, scorer, check_probs) -> dict:
        if name == "onnx-fp16":  # a GPU graph, checked here on CPU, where float16 runs slowly (minutes
            # per 100k rows): its metrics over the check rows it has just scored, not the whole split
            return {"check_metrics": binary_metrics(np.asarray(test_y)[rows], check_probs[:, 1], threshold)}
        return {"test_metrics": binary_metrics(test_y, scorer.predict_proba(test_texts)[:, 1], threshold)}

    return write_backends(staging, bert_weights(model.variables), heads, pooling, reference.predict_proba,
                          check, layer_norm_eps=eps, evaluate=evaluate)


def spread(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` row indices evenly spread over ``n`` rows: a check sample that spans the split
    (a labelled file's rows are often grouped by label: Sentiment140's negatives come first)."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64)) if n else np.zeros(0, np.int64)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
