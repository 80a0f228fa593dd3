"""Score texts with a model artifact: numpy in, numpy out.

:func:`get_scorer` caches one :class:`Scorer` per (artifact, device, backend) per process, so a
Spark Python worker that is reused across tasks loads the model once. transformers is never
imported: the Rust tokenizer and one of the artifact's backends are all scoring needs.

Backends (``backend=``):

- ``tf``: the TF SavedModel, on CPU or GPU (the reference);
- ``onnx``: the artifact's ``model.onnx`` (same weights, fused BERT operators) on ONNX Runtime's
  CPU provider, without importing TensorFlow; scores agree with ``tf`` within 1e-4 (checked at
  export and recorded in the metadata);
- ``onnx-int8``: ``model.int8.onnx``, int8 weights; faster, scores differ slightly (its measured
  label agreement and test metrics are in the metadata), so it is never chosen automatically;
- ``onnx-fp16``: ``model.fp16.onnx``, the encoder in float16, for GPUs (ONNX Runtime's CUDA
  provider, from the ``onnxruntime-gpu`` package); scores within ~1e-3 of fp32 (checked at export);
- ``auto`` (default): on CPU, ``onnx`` when the artifact has it and onnxruntime is installed;
  on a GPU, ``onnx-fp16`` when the artifact has it and onnxruntime has the CUDA provider; else ``tf``.

The ONNX backends run on a GPU when given a GPU device (``/GPU:<n>`` or ``cuda:<n>``, a logical
index) and onnxruntime has the CUDA provider; ``onnx-int8`` is CPU-only.

On ONNX Runtime, ``intra_op_threads`` > 1 runs that many mini-batches at once, each operator
single-threaded, rather than splitting each operator across threads: MiniLM's matrices at tweet
length are too small for intra-op threading to pay (measured in ``bench.scoring``). Spark tasks
with one CPU each therefore run exactly like one thread of the in-process scorer.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from .artifact import SAVED_MODEL, TOKENIZER, ArtifactError, check_tokenizer, file_sha256, load_metadata
from .text import normalize_all
from .tokenization import PAD_MULTIPLE, TextEncoder

log = logging.getLogger(__name__)

# mini-batch rows by backend, measured on 2 CPU cores (bench.scoring): ONNX Runtime's single-threaded
# operators run best on small batches, TF on larger ones
DEFAULT_BATCH_SIZES = {"tf": 64, "onnx": 32, "onnx-int8": 32, "onnx-fp16": 32}
GPU_BATCH_SIZE = 1024  # mini-batch rows on a GPU: 44k tweets/s on an H100 against 41k at 256, 33k at 64 (bench.gpu_check)
BACKENDS = ("auto", "tf", "onnx", "onnx-int8", "onnx-fp16")


def _batch_rows(batch_size: int | None, backend: str, gpu: bool = False) -> int:
    return int(batch_size or (GPU_BATCH_SIZE if gpu else DEFAULT_BATCH_SIZES[backend]))


def is_gpu(device: str | None) -> bool:
    return device is not None and ("GPU" in device.upper() or device.lower().startswith("cuda"))


def ort_cuda_available() -> bool:
    """Whether the installed onnxruntime has the CUDA provider (the onnxruntime-gpu package)."""
    if not _onnxruntime_available():
        return False
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def _onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def resolve_backend(meta: dict, backend: str = "auto", gpu: bool = False) -> str:
    """The concrete backend for this artifact: see the module docstring."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    recorded = meta.get("backends") or {}
    if backend == "auto":
        if gpu:
            return "onnx-fp16" if "onnx-fp16" in recorded and ort_cuda_available() else "tf"
        return "onnx" if "onnx" in recorded and _onnxruntime_available() else "tf"
    if backend != "tf":
        if backend not in recorded:
            why = recorded.get(f"{backend}_error") or recorded.get("onnx_error") or "it was exported without ONNX backends"
            raise ArtifactError(f"artifact {meta.get('path')} has no {backend} backend ({why}); add it with "
                                f"`python -m training.onnx_export --model {meta.get('path')}` or use --backend tf")
        if not _onnxruntime_available():
            raise ArtifactError(f"backend {backend} needs the onnxruntime package, which is not installed")
    return backend


def gpu_index(gpu_address: str | None) -> int:
    """Logical GPU index of a physical address as Spark's TaskContext reports it (through
    CUDA_VISIBLE_DEVICES when set); 0 without an address."""
    if gpu_address is None:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [v.strip() for v in visible.split(",")]
        return ids.index(str(gpu_address)) if str(gpu_address) in ids else 0
    return int(gpu_address)


def select_device(gpu_address: str | None = None) -> str:
    """TF device string for this process: the given GPU address (as Spark's TaskContext reports it,
    a physical index), else the first visible GPU, else the CPU."""
    from .tfenv import tf

    gpus = tf().config.list_physical_devices("GPU")
    if not gpus:
        return "/CPU:0"
    return f"/GPU:{min(gpu_index(gpu_address), len(gpus) - 1)}"


class Scorer:
    def __init__(self, artifact: str, device: str | None = None, batch_size: int | None = None,
                 intra_op_threads: int | None = None, backend: str = "auto", _unchecked: bool = False):
        t0 = time.perf_counter()
        self.meta = load_metadata(artifact)
        gpu = is_gpu(device)
        if _unchecked:  # export-time check of files not yet recorded in the metadata
            self.backend = backend
        else:
            self.backend = resolve_backend(self.meta, backend, gpu)
        self.batch_size = _batch_rows(batch_size, self.backend, gpu)
        self._pool = None
        self._pad_multiple = PAD_MULTIPLE if self.backend == "tf" else 1  # see sentiment_core.tokenization
        self.labels = np.array(self.meta["labels"], dtype=object)
        self.threshold = float(self.meta["threshold"])
        self.model_version = self.meta["model_version"]
        self.normalization = self.meta["normalization"]
        self.encoder = TextEncoder(os.path.join(artifact, TOKENIZER), self.meta["max_length"])
        check_tokenizer(self.meta, self.encoder)
        if self.backend == "tf":
            from .tfenv import tf

            self.tf = tf(intra_op_threads)
            self.device = device or select_device()
            with self.tf.device(self.device):
                self._loaded = self.tf.saved_model.load(os.path.join(artifact, SAVED_MODEL))
            self._fn = self._loaded.signatures["serving_default"]
            self._forward = self._forward_tf
        else:
            cuda = gpu and self.backend != "onnx-int8" and ort_cuda_available()
            if gpu and not cuda:
                log.warning("backend %s runs on CPU: %s", self.backend, "int8 is CPU-only" if self.backend == "onnx-int8"
                            else "onnxruntime has no CUDA provider (install onnxruntime-gpu for the GPU)")
            cuda_device = None
            if cuda:  # "/GPU:1", "cuda:1" -> 1
                index = re.search(r"(\d+)$", device)
                cuda_device = int(index.group(1)) if index else 0
            self.device = "cpu" if cuda_device is None else f"cuda:{cuda_device}"
            self._session = _ort_session(artifact, self.meta, self.backend, check=not _unchecked, cuda_device=cuda_device)
            # CPU: concurrent single-threaded mini-batches; GPU: GPU_WORKERS mini-batches in flight
            workers = int(intra_op_threads or (GPU_WORKERS if cuda else os.cpu_count()) or 1)
            if workers > 1:  # InferenceSession.run is thread-safe and releases the GIL
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ort")
            self._forward = self._forward_ort
        self.load_seconds = time.perf_counter() - t0
        log.info("loaded model %s (%s) on %s in %.1fs", self.model_version, self.backend, self.device, self.load_seconds)

    def _forward_tf(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self.tf.device(self.device):
            out = self._fn(input_ids=self.tf.constant(ids), attention_mask=self.tf.constant(mask))
        return out["probabilities"].numpy()

    def _forward_ort(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._session.run(["probabilities"], {"input_ids": ids, "attention_mask": mask})[0]

    def predict_proba(self, texts: Sequence[str], dedup: bool = True) -> np.ndarray:
        """float32 [n, len(labels)] class probabilities, in input order. With ``dedup``, each
        distinct text (after normalisation, which is what the model sees) goes through the model
        once and its row is copied to every repeat: retweets repeat their original's text, 11% of
        a real v1.1 minute file's tweets and up to 45% of the v2 sample files'."""
        return self._proba(texts, dedup)[0]

    def _proba(self, texts: Sequence[str], dedup: bool) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, model_rows): ``model_rows`` marks the rows that went through the model
        (each distinct text's first row; every row without ``dedup``)."""
        texts = normalize_all(texts, self.normalization)
        if dedup:
            first: dict[str, int] = {}
            inverse = np.fromiter((first.setdefault(t, len(first)) for t in texts), dtype=np.int64, count=len(texts))
            if len(first) < len(texts):
                model_rows = np.zeros(len(texts), dtype=bool)
                model_rows[np.unique(inverse, return_index=True)[1]] = True
                return self._predict(list(first))[inverse], model_rows  # dicts keep insertion order: row i is text i
        return self._predict(texts), np.ones(len(texts), dtype=bool)

    def _predict(self, texts: list[str]) -> np.ndarray:
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        batches = self.encoder.sorted_batches(texts, self.batch_size, self._pad_multiple)
        if self._pool is None:
            for idx, ids, mask in batches:
                probs[idx] = self._forward(ids, mask)
        else:
            for idx, out in self._pool.map(lambda b: (b[0], self._forward(b[1], b[2])), batches):
                probs[idx] = out
        return probs

    def labels_for(self, probs: np.ndarray) -> np.ndarray:
        """Label names: binary models use the artifact's threshold on the positive class,
        multi-class models the most probable class."""
        if len(self.labels) == 2:
            pos = self.meta["labels"].index(self.meta["positive_label"])
            return np.where(probs[:, pos] >= self.threshold, self.labels[pos], self.labels[1 - pos])
        return self.labels[probs.argmax(axis=1)]

    def score(self, texts: Sequence[str], dedup: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(score, label): score is the positive-class probability (float32), label its name."""
        score, labels, _ = self.score_rows(texts, dedup)
        return score, labels

    def score_rows(self, texts: Sequence[str], dedup: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, label, model_row): as :meth:`score`, and which rows went through the model
        (False for a repeat that took its text's scores): what the jobs report as model rows."""
        probs, model_rows = self._proba(texts, dedup)
        pos = self.meta["labels"].index(self.meta["positive_label"])
        return probs[:, pos].copy(), self.labels_for(probs), model_rows


BACKEND_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx", "onnx-fp16": "model.fp16.onnx"}
GPU_WORKERS = 1  # mini-batches in flight per process on a GPU: more only contend for the GIL (bench.gpu_check)


def _ort_session(artifact: str, meta: dict, backend: str, check: bool = True, cuda_device: int | None = None):
    """An ONNX Runtime session on the backend's file, after checking it is the file the export
    verified (sha256 in the metadata): on that CUDA device when given, else on CPU. CPU operators
    are single-threaded: the Scorer runs mini-batches in parallel instead."""
    import onnxruntime as ort

    path = os.path.join(artifact, BACKEND_FILES[backend])
    if check:
        if file_sha256(path) != meta["backends"][backend]["sha256"]:
            raise ArtifactError(f"{path} does not match the sha256 recorded in the artifact's metadata")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if cuda_device is None:
        # the graph's Add + LayerNormalization run faster on CPU than the fused SkipLayerNormalization
        # ONNX Runtime would make of them (training.onnx_export.build_graph)
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=["SkipLayerNormFusion"])
    session = ort.InferenceSession(path, so, providers=[("CUDAExecutionProvider", {"device_id": cuda_device}),
                                                        "CPUExecutionProvider"])
    if "CUDAExecutionProvider" not in session.get_providers():  # onnxruntime-gpu without its CUDA libraries
        raise ArtifactError(f"onnxruntime could not start its CUDA provider on GPU {cuda_device} (are the CUDA "
                            "and cuDNN libraries of onnxruntime-gpu installed? see its log above); "
                            "or score with --backend tf")
    return session


_cache: dict[tuple, Scorer] = {}
_lock = threading.Lock()
load_counts: dict[tuple[str, str], int] = {}  # loads per (artifact path, backend): tests prove once-per-worker loading


def get_scorer(artifact: str, device: str | None = None, batch_size: int | None = None,
               intra_op_threads: int | None = None, backend: str = "auto") -> Scorer:
    """The process-wide scorer for this artifact, device and backend, loaded on first use. The
    mini-batch size is not part of the key (it needs no reload): the latest caller's applies
    (None: the backend's default)."""
    if backend == "auto":  # key by the backend it resolves to, so auto and its choice share one model
        backend = resolve_backend(load_metadata(artifact), backend, gpu=is_gpu(device))
    key = (os.path.abspath(artifact), device, backend)
    with _lock:
        scorer = _cache.get(key)
        if scorer is None:
            scorer = _cache[key] = Scorer(artifact, device, batch_size, intra_op_threads, backend)
            counted = (key[0], scorer.backend)
            load_counts[counted] = load_counts.get(counted, 0) + 1
        scorer.batch_size = _batch_rows(batch_size, scorer.backend, is_gpu(device))  # as Scorer() sizes it
        return scorer
