"""Score texts with a model artifact: numpy in, numpy out.

:func:`get_scorer` caches one :class:`Scorer` per (artifact, device) per process, so a Spark
Python worker that is reused across tasks loads the model once. TensorFlow is imported lazily,
transformers never: the SavedModel and the Rust tokenizer are all scoring needs.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Sequence

import numpy as np

from .artifact import SAVED_MODEL, TOKENIZER, check_tokenizer, load_metadata
from .text import normalize_all
from .tokenization import TextEncoder

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64


def select_device(gpu_address: str | None = None) -> str:
    """TF device string for this process: the given GPU address (as Spark's TaskContext reports it,
    a physical index), else the first visible GPU, else the CPU."""
    from .tfenv import tf

    gpus = tf().config.list_physical_devices("GPU")
    if not gpus:
        return "/CPU:0"
    if gpu_address is not None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:  # physical address -> logical index among the visible devices
            ids = [v.strip() for v in visible.split(",")]
            idx = ids.index(str(gpu_address)) if str(gpu_address) in ids else 0
        else:
            idx = int(gpu_address)
        return f"/GPU:{min(idx, len(gpus) - 1)}"
    return "/GPU:0"


class Scorer:
    def __init__(self, artifact: str, device: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 intra_op_threads: int | None = None):
        from .tfenv import tf

        t0 = time.perf_counter()
        self.meta = load_metadata(artifact)
        self.tf = tf(intra_op_threads)
        self.device = device or select_device()
        self.batch_size = int(batch_size)
        self.labels = np.array(self.meta["labels"], dtype=object)
        self.threshold = float(self.meta["threshold"])
        self.model_version = self.meta["model_version"]
        self.normalization = self.meta["normalization"]
        self.encoder = TextEncoder(os.path.join(artifact, TOKENIZER), self.meta["max_length"])
        check_tokenizer(self.meta, self.encoder)
        with self.tf.device(self.device):
            self._loaded = self.tf.saved_model.load(os.path.join(artifact, SAVED_MODEL))
        self._fn = self._loaded.signatures["serving_default"]
        self.load_seconds = time.perf_counter() - t0
        log.info("loaded model %s on %s in %.1fs", self.model_version, self.device, self.load_seconds)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self.tf.device(self.device):
            out = self._fn(input_ids=self.tf.constant(ids), attention_mask=self.tf.constant(mask))
        return out["probabilities"].numpy()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, len(labels)] class probabilities, in input order."""
        texts = normalize_all(texts, self.normalization)
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for idx, ids, mask in self.encoder.sorted_batches(texts, self.batch_size):
            probs[idx] = self._forward(ids, mask)
        return probs

    def labels_for(self, probs: np.ndarray) -> np.ndarray:
        """Label names: binary models use the artifact's threshold on the positive class,
        multi-class models the most probable class."""
        if len(self.labels) == 2:
            pos = self.meta["labels"].index(self.meta["positive_label"])
            return np.where(probs[:, pos] >= self.threshold, self.labels[pos], self.labels[1 - pos])
        return self.labels[probs.argmax(axis=1)]

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(score, label): score is the positive-class probability (float32), label its name."""
        probs = self.predict_proba(texts)
        pos = self.meta["labels"].index(self.meta["positive_label"])
        return probs[:, pos].copy(), self.labels_for(probs)


_cache: dict[tuple, Scorer] = {}
_lock = threading.Lock()
load_counts: dict[str, int] = {}  # loads per artifact path (tests prove once-per-worker loading with it)


def get_scorer(artifact: str, device: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
               intra_op_threads: int | None = None) -> Scorer:
    """The process-wide scorer for this artifact and device, loaded on first use."""
    key = (os.path.abspath(artifact), device, int(batch_size))
    with _lock:
        scorer = _cache.get(key)
        if scorer is None:
            scorer = _cache[key] = Scorer(artifact, device, batch_size, intra_op_threads)
            load_counts[key[0]] = load_counts.get(key[0], 0) + 1
        return scorer
