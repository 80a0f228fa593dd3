"""Import TensorFlow the one way this project needs it, lazily.

transformers' TF classes need Keras 2 (``tf_keras``); TF 2.21 ships Keras 3 as ``tf.keras``.
``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported, so every module gets
TensorFlow through :func:`tf` instead of ``import tensorflow`` at top level.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)
_module = None
CPU_POOL_ENV = "TF_CPU_ALLOCATOR_USE_BFC"


def tf(intra_op_threads: int | None = None):
    """Return the ``tensorflow`` module, configured once per process.

    ``intra_op_threads``: TF's per-op thread pool size (e.g. the cores a Spark task owns);
    applied only if TensorFlow is not initialised yet in this process (TF refuses later).
    GPUs get memory growth so several tasks can share one GPU.

    Once configured it only returns the module: model code calls it inside functions that
    AutoGraph traces, and AutoGraph, failing to convert ``os.environ.setdefault``, logged a
    warning with the repr of ``os.environ``, i.e. every environment variable, secrets included.
    """
    global _module
    if _module is not None:
        return _module
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TF's CPU tensors come from glibc malloc by default, and a training step's large ones (the
    # embedding matrix's gradient and optimizer temporaries, 47 MB for MiniLM) are above glibc's
    # mmap threshold: every step mapped and unmapped them, and the kernel zeroed each page again
    # on its first touch (page faults were 43% of a CPU training step's time). TF's own
    # best-fit-with-coalescing pool keeps freed memory for reuse: bench.training measures both
    os.environ.setdefault(CPU_POOL_ENV, "true")
    import tensorflow as tf_mod

    try:
        if intra_op_threads:
            tf_mod.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))
            tf_mod.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this process
        log.debug("TensorFlow already initialised; thread settings left as they are")
    for gpu in tf_mod.config.list_physical_devices("GPU"):
        try:
            tf_mod.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    _module = tf_mod
    return tf_mod


def keras():
    """The Keras 2 package (``tf_keras``) that transformers' TF models are built with."""
    tf()
    import tf_keras

    return tf_keras
