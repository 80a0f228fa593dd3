"""The model artifact: one immutable, versioned directory that carries everything scoring needs.

Layout::

    <artifact>/
      saved_model/        TF SavedModel; signature ``serving_default`` takes int32 ``input_ids`` and
                          ``attention_mask`` of shape [batch, any length <= max_length] and returns
                          ``score`` (float32 [batch], probability of ``positive_label``) and
                          ``probabilities`` (float32 [batch, len(labels)])
      tokenizer.json      the fast tokenizer (plus vocab.txt, tokenizer_config.json)
      model.onnx          optional: the same weights for ONNX Runtime (fp32, fused BERT operators)
      model.int8.onnx     optional: the same graph with int8 weights
      metadata.json       see REQUIRED_KEYS; ``backends`` records each ONNX file's sha256 and its
                          check against the SavedModel (training/onnx_export.py)

The ONNX files are derived from the SavedModel's weights and verified against it; they are the
only files ever added to a published artifact (``python -m training.onnx_export``), since they
change no score beyond the recorded tolerance and not the model version.

Scoring reads labels, threshold, max length and text normalisation from ``metadata.json``, never
from constants. :func:`load_metadata` validates the directory and fails with one clear message.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

FORMAT_VERSION = 1
METADATA = "metadata.json"
SAVED_MODEL = "saved_model"
TOKENIZER = "tokenizer.json"

REQUIRED_KEYS = {
    "format_version": int,
    "model_version": str,
    "base_model": str,
    "max_length": int,
    "max_position_embeddings": int,
    "labels": list,
    "positive_label": str,
    "threshold": (int, float),
    "normalization": str,
    "do_lower_case": bool,
    "created_at": str,
}


def files_sha256(paths) -> str:
    """Hex sha256 of the files' bytes, concatenated in the given order, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of one file."""
    return files_sha256([path])


class ArtifactError(ValueError):
    """The artifact is missing, incomplete or inconsistent."""


def load_metadata(path: str | os.PathLike) -> dict:
    """Validate an artifact directory and return its metadata (with ``path`` added)."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"model artifact not found: {root} (pass the directory that training.train printed)")
    meta_file = root / METADATA
    if not meta_file.is_file() and (root / "artifact" / METADATA).is_file():
        raise ArtifactError(f"{root} is a training run, not its artifact: pass {root / 'artifact'}")
    if not meta_file.is_file():
        raise ArtifactError(f"{root} is not a model artifact: {METADATA} is missing "
                            "(an interrupted export leaves no artifact; re-run training.train)")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{meta_file} is not valid JSON: {e}") from None
    for key, typ in REQUIRED_KEYS.items():
        if key not in meta:
            raise ArtifactError(f"{meta_file} lacks required key {key!r}")
        if not isinstance(meta[key], typ):
            raise ArtifactError(f"{meta_file}: {key!r} should be {typ}, got {meta[key]!r}")
    if meta["format_version"] != FORMAT_VERSION:
        raise ArtifactError(f"{root}: artifact format {meta['format_version']} is not supported by this "
                            f"version (expects {FORMAT_VERSION}); re-export it or upgrade tweet-sentiment")
    labels = meta["labels"]
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ArtifactError(f"{meta_file}: labels must be 2+ distinct names, got {labels}")
    if meta["positive_label"] not in labels:
        raise ArtifactError(f"{meta_file}: positive_label {meta['positive_label']!r} not in labels {labels}")
    if not 0.0 < float(meta["threshold"]) < 1.0:
        raise ArtifactError(f"{meta_file}: threshold must be in (0, 1), got {meta['threshold']}")
    if not 2 <= meta["max_length"] <= meta["max_position_embeddings"]:
        raise ArtifactError(f"{meta_file}: max_length {meta['max_length']} must be in "
                            f"[2, max_position_embeddings={meta['max_position_embeddings']}]")
    from .text import get_normalizer

    get_normalizer(meta["normalization"])
    for required in (SAVED_MODEL + "/saved_model.pb", TOKENIZER):
        if not (root / required).is_file():
            raise ArtifactError(f"{root} is incomplete: {required} is missing")
    meta["path"] = str(root.resolve())
    return meta


def check_tokenizer(meta: dict, encoder) -> None:
    """The tokenizer's casing must match what the model was trained with."""
    lc = encoder.lowercase
    if lc is not None and lc != meta["do_lower_case"]:
        raise ArtifactError(f"{meta['path']}: tokenizer lower-casing is {lc} but the model was trained with "
                            f"do_lower_case={meta['do_lower_case']}; the artifact's files do not belong together")


def publish(staging: Path, final: Path) -> Path:
    """Atomically move a fully written staging directory to its final name (same filesystem).
    Refuses to replace an existing artifact: artifacts are immutable."""
    if final.exists():
        raise ArtifactError(f"artifact directory already exists: {final}; artifacts are immutable - "
                            "choose another --output-dir or remove it")
    os.rename(staging, final)
    return final


def staging_dir(final: Path) -> Path:
    """A fresh hidden staging directory beside ``final`` (removing leftovers of a killed export)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for old in final.parent.glob(f".{final.name}.staging-*"):
        shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
