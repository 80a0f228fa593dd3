"""Shared library of tweet-sentiment: schemas, readers, text normalisation, tokenisation,
the model artifact and the scorer.

Nothing here imports Spark or TensorFlow at module import time; the modules that need them
(``artifact``, ``scorer``, ``spark``) import them lazily inside functions.
"""

__version__ = "0.1.0"
