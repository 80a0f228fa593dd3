"""Fine-tune BERT on labelled tweets and export a versioned model artifact.

    python -m training.train --data FILE [--data FILE2 ...] --output-dir DIR [options]

The last line of stdout is the exported artifact's path. The output directory holds the run:
``run_config.json``, ``data/`` (cleaned splits), ``checkpoints/`` (resume state), ``best/`` (best
weights by validation loss), ``logs/`` (CSV per step and epoch, TensorBoard events), ``plots/``
and ``artifact/``. A run killed at any point and started again with the same command resumes
from its last checkpoint; a finished run started again prints its artifact and exits.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sentiment_core.labelled import FORMATS, data_file, parse_label_map
from sentiment_core.text import DEFAULT_NORMALIZER, NORMALIZERS

log = logging.getLogger("training.train")


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...] = field(metadata={"help": "labelled tweet file(s); repeat --data for several"})
    output_dir: str = field(metadata={"help": "run directory: checkpoints, logs, plots and the artifact"})
    format: str = field(default="auto", metadata={"help": "sentiment140|semeval|table|auto (per file)"})
    holdout: tuple[str, ...] = field(default=(), metadata={
        "help": "labelled file(s) kept for evaluation, read as --data is: their tweets (by id or by text) never "
                "enter any split; repeat"})
    text_col: str = field(default="text", metadata={"help": "text column (table format)"})
    label_col: str = field(default="label", metadata={"help": "label column (table format)"})
    id_col: str | None = field(default=None, metadata={"help": "id column (table format; default: hash of text)"})
    label_map: str | None = field(default=None, metadata={
        "help": "table format: what the label values mean, e.g. 0=negative,1=neutral,2=positive (tweet_eval); "
                "needed where the labels include both 1 and 2"})
    base_model: str = field(default="all-MiniLM-L6-v2", metadata={"help": "BERT checkpoint dir or hub id"})
    pooling: str = field(default="mean", metadata={"help": "pooled|cls|mean sentence vector for the head"})
    dropout: float = field(default=0.1, metadata={"help": "dropout before the head"})
    epochs: int = field(default=3, metadata={"help": "maximum epochs (early stopping may end sooner)"})
    batch_size: int = field(default=32, metadata={"help": "global batch size"})
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate (AdamW)"})
    warmup_ratio: float = field(default=0.06, metadata={"help": "share of steps for linear warm-up"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    max_length: int = field(default=64, metadata={"help": "truncate tweets to this many tokens"})
    max_rows: int | None = field(default=None, metadata={"help": "train on a seeded sample of N rows"})
    seed: int = field(default=42, metadata={"help": "seed for split and sampling, and for shuffling and init unless --shuffle-seed"})
    shuffle_seed: int | None = field(default=None, metadata={
        "help": "seed for the batch order, the head's initial weights and dropout only (default: --seed): runs "
                "that differ in it share their split (seed-to-seed spread; `python -m bench.soup` combines them)"})
    patience: int = field(default=1, metadata={"help": "epochs without val-loss improvement before stopping"})
    ema_decay: float = field(default=0.0, metadata={
        "help": "keep an exponential moving average of the weights with this decay (e.g. 0.998; 0: off); each "
                "epoch's validation scores it beside the raw weights and the better by val loss is kept"})
    average_best: bool = field(default=True, metadata={
        "help": "each epoch after the first also scores the mean of the best weights so far and the epoch's "
                "(a two-model soup); it is kept where its validation loss is the lowest"})
    normalization: str = field(default=DEFAULT_NORMALIZER, metadata={"help": f"text normalisation {sorted(NORMALIZERS)}"})
    tune_threshold: bool = field(default=True, metadata={
        "help": "pick the decision threshold that maximises validation accuracy (else 0.5)"})
    fixed_padding: bool = field(default=False, metadata={"help": "pad every batch to max_length (baseline)"})
    checkpoint_every: int = field(default=200, metadata={"help": "save resume state every N steps"})
    log_every: int = field(default=20, metadata={"help": "CSV/TensorBoard row every N steps"})
    eval_every: int = field(default=0, metadata={"help": "validation-subset eval every N steps (0: 4 per epoch)"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after N steps in total, then export (smoke runs)"})

    def __post_init__(self):
        from training.model import POOLINGS

        if not self.data:
            raise ValueError("give at least one --data FILE")
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {FORMATS}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"--pooling must be one of {POOLINGS}")
        if self.normalization not in NORMALIZERS:
            raise ValueError(f"--normalization must be one of {sorted(NORMALIZERS)}")
        parse_label_map(self.label_map)  # a malformed map: one clear line before anything is written
        for name in ("epochs", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.max_rows is not None and self.max_rows < 10:
            raise ValueError("--max-rows must be >= 10")
        if not 2 <= self.max_length <= 512:
            raise ValueError("--max-length must be in [2, 512]")
        if not 0 < self.learning_rate < 1:
            raise ValueError("--learning-rate must be in (0, 1)")
        if not 0 <= self.ema_decay < 1:
            raise ValueError("--ema-decay must be in [0, 1)")

    def resume_key(self) -> dict:
        """What must match for a restart to continue this run (not the logging cadence)."""
        d = dataclasses.asdict(self)
        for k in ("checkpoint_every", "log_every", "eval_every", "max_steps", "epochs", "patience"):
            d.pop(k)
        if not d["ema_decay"]:  # off: the key of runs started before the option existed
            d.pop("ema_decay")
        if not d["label_map"]:  # likewise
            d.pop("label_map")
        if d["shuffle_seed"] is None:  # likewise
            d.pop("shuffle_seed")
        if d["average_best"]:  # on: likewise (it changes which weights are kept, not the training)
            d.pop("average_best")
        return d


def parse_args(argv=None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kw = {"help": f.metadata.get("help", ""), "dest": f.name}
        if f.name == "data":
            p.add_argument(flag, action="append", required=True, **kw)
        elif f.name == "holdout":
            p.add_argument(flag, action="append", default=[], **kw)
        elif f.name == "output_dir":
            p.add_argument(flag, required=True, **kw)
        elif f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, **kw)
        else:
            typ = {"int": int, "float": float, "int | None": int}.get(str(f.type), str)
            p.add_argument(flag, type=typ, default=f.default, **kw)
    ns = p.parse_args(argv)
    ns.data = tuple(ns.data)
    ns.holdout = tuple(ns.holdout)
    return TrainConfig(**vars(ns))


def _source_stamp(paths) -> list[dict]:
    out = []
    for p in paths:
        st = os.stat(data_file(p))
        out.append({"path": os.path.abspath(p), "size": st.st_size, "mtime": int(st.st_mtime)})
    return out


class Run:
    """The run directory and its resume rules."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dir = Path(cfg.output_dir)
        self.data_dir = self.dir / "data"
        self.ckpt_dir = self.dir / "checkpoints"
        self.best_dir = self.dir / "best"
        self.logs_dir = self.dir / "logs"
        self.artifact_dir = self.dir / "artifact"
        self.done_file = self.dir / "DONE.json"

    # what a run writes before its first checkpoint
    STARTED = ("run_config.json", "train.log", "data.tmp", "data", "tokenizer", "logs", "plots", "best", "checkpoints")

    def start(self) -> bool:
        """Create or re-open the run. Returns True when resuming an earlier start."""
        key = json.loads(json.dumps({"config": self.cfg.resume_key(),
                                     "sources": _source_stamp(self.cfg.data + self.cfg.holdout)}))
        cfg_file = self.dir / "run_config.json"
        if self.dir.exists() and not self.dir.is_dir():
            raise ValueError(f"--output-dir {self.dir} is a file; choose a directory")
        if cfg_file.exists():
            old = json.loads(cfg_file.read_text())
            if old.get("resume_key") == key:
                return True
            if self.done_file.exists() or (self.ckpt_dir / "checkpoint").exists():
                raise ValueError(f"{self.dir} holds a run with different settings or data; resume it with its "
                                 f"original command (see {cfg_file}) or choose a new --output-dir")
            # a start that failed before its first checkpoint (a wrong column, a bad base model):
            # nothing to resume, so the corrected command starts over here
            log.info("%s: replacing a run that stopped before its first checkpoint", self.dir)
            for name in self.STARTED:
                path = self.dir / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        if self.dir.exists() and any(self.dir.iterdir()):
            raise ValueError(f"--output-dir {self.dir} exists and is not a training run; choose a new directory")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"--output-dir {self.dir} cannot be created: {e.strerror} ({e.filename})") from None
        tmp = cfg_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"resume_key": key, "config": dataclasses.asdict(self.cfg)}, indent=2))
        os.replace(tmp, cfg_file)
        return False


def prepare_data(run: Run) -> dict:
    from training.data import Source, prepare

    summary_file = run.data_dir / "summary.json"
    if summary_file.exists():
        return json.loads(summary_file.read_text())
    c = run.cfg
    sources = [Source(p, c.format, c.text_col, c.label_col, c.id_col, parse_label_map(c.label_map)) for p in c.data]
    tmp = run.dir / "data.tmp"
    # the holdout files are read as the data files are (format, columns, label map)
    holdout = [dataclasses.replace(sources[0], path=p) for p in c.holdout]
    summary = prepare(sources, tmp, c.seed, c.max_rows, holdout=holdout)
    if run.data_dir.exists():
        shutil.rmtree(run.data_dir)
    os.rename(tmp, run.data_dir)
    return summary


def _progress(total: int, initial: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, unit="step", dynamic_ncols=True,
                disable=None if sys.stderr.isatty() else True)


def train(cfg: TrainConfig) -> Path:
    from sentiment_core.tfenv import keras, tf
    from sentiment_core.tokenization import TextEncoder
    from training import model as M
    from training.data import TrainBatches, read_split
    from training.export import evaluate_arrays, export_artifact, predict_arrays
    from training.logs import EPOCH_FIELDS, STEP_FIELDS, CsvLog, plot

    run = Run(cfg)
    if not run.done_file.exists():  # what a user can fix, before anything is written
        base_path = M.resolve_base_model(cfg.base_model)
        base_cfg = M.check_bert_checkpoint(base_path)
        max_pos = int(base_cfg.get("max_position_embeddings", 512))
        if cfg.max_length > max_pos:
            raise ValueError(f"--max-length {cfg.max_length} exceeds the base model's max_position_embeddings {max_pos}")
    resumed = run.start()
    if run.done_file.exists():
        done = json.loads(run.done_file.read_text())
        log.info("run already finished; artifact %s", done["artifact"])
        return Path(done["artifact"])
    logging.getLogger().addHandler(logging.FileHandler(run.dir / "train.log"))
    log.info("config: %s", json.dumps(dataclasses.asdict(cfg)))
    summary = prepare_data(run)
    log.info("data: read %d rows, kept %d, dropped %s, splits %s", summary["rows_read"], summary["kept"],
             summary["dropped"], {k: v["rows"] for k, v in summary["splits"].items()})

    t = tf()
    k = keras()
    tok_dir = run.dir / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        M.load_tokenizer(base_path).save_pretrained(str(tok_dir))
    encoder = TextEncoder(tok_dir / "tokenizer.json", cfg.max_length)
    gpus = t.config.list_physical_devices("GPU")
    mixed = bool(gpus)
    if mixed:
        k.mixed_precision.set_global_policy("mixed_float16")
    strategy = t.distribute.MirroredStrategy() if len(gpus) > 1 else t.distribute.get_strategy()
    log.info("devices: %s; replicas %d; mixed precision %s",
             [g.name for g in gpus] or ["CPU"], strategy.num_replicas_in_sync, mixed)

    train_seed = cfg.seed if cfg.shuffle_seed is None else cfg.shuffle_seed
    batches = TrainBatches(run.data_dir, encoder, cfg.normalization, cfg.batch_size, train_seed,
                           cfg.max_length if cfg.fixed_padding else None)
    steps_per_epoch = batches.steps_per_epoch()
    k.utils.set_random_seed(train_seed)
    with strategy.scope():
        bert = M.load_encoder(base_path)
        model = M.build_classifier(bert, cfg.pooling, cfg.dropout)
        optimizer = M.make_optimizer(cfg.learning_rate, steps_per_epoch * cfg.epochs, cfg.warmup_ratio,
                                     cfg.weight_decay, mixed)
        state = {n: t.Variable(v, trainable=False, dtype=dt, name=n) for n, v, dt in (
            ("epoch", 0, t.int64), ("step_in_epoch", 0, t.int64), ("global_step", 0, t.int64),
            ("best_val_loss", np.inf, t.float64), ("bad_epochs", 0, t.int64), ("best_epoch", -1, t.int64),
            ("best_is_ema", 0, t.int64), ("best_is_average", 0, t.int64))}
        ema = M.WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
        ckpt = t.train.Checkpoint(model=model, optimizer=optimizer, **state, **({"ema": ema.checkpoint()} if ema else {}))
    manager = t.train.CheckpointManager(ckpt, str(run.ckpt_dir), max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).expect_partial()
        log.info("resumed from %s at epoch %d step %d (global step %d)", manager.latest_checkpoint,
                 int(state["epoch"].numpy()), int(state["step_in_epoch"].numpy()), int(state["global_step"].numpy()))
    elif resumed:
        log.info("restarting run: no checkpoint yet, starting from step 0")

    run.logs_dir.mkdir(exist_ok=True)
    step_log = CsvLog(run.logs_dir / "steps.csv", STEP_FIELDS)
    epoch_log = CsvLog(run.logs_dir / "epochs.csv", EPOCH_FIELDS)
    step_log.truncate("global_step", int(state["global_step"].numpy()))
    epoch_log.truncate("epoch", int(state["epoch"].numpy()))
    tb = t.summary.create_file_writer(str(run.logs_dir / "tensorboard"))

    train_step = M.make_train_step(model, optimizer, strategy, mixed, ema)

    predict = predict_arrays(model)
    val_ids, val_texts, val_y = read_split(run.data_dir, "validation")
    sub = np.random.default_rng(cfg.seed).permutation(len(val_y))[:1000]
    eval_every = cfg.eval_every or max(1, steps_per_epoch // 4)

    def dataset(epoch, skip):
        gen = lambda: batches.epoch(epoch, skip)  # noqa: E731
        spec = (t.TensorSpec([None, None], t.int32), t.TensorSpec([None, None], t.int32), t.TensorSpec([None], t.float32))
        ds = t.data.Dataset.from_generator(gen, output_signature=spec).prefetch(4)
        return strategy.experimental_distribute_dataset(ds) if strategy.num_replicas_in_sync > 1 else ds

    def lr_now():
        opt = optimizer.inner_optimizer if mixed else optimizer
        lr = opt.learning_rate
        return float(lr(opt.iterations) if callable(lr) else lr)

    def weights() -> list:
        return [v.numpy() for v in model.weights]

    def assign(values) -> None:
        for v, w in zip(model.weights, values):
            v.assign(w)

    best_weights: list = []  # the best weights so far, in memory (read back on a resume)

    def best_so_far() -> list:
        if not best_weights:
            current = weights()
            model.load_weights(str(run.best_dir / "weights")).expect_partial()
            best_weights[:] = weights()
            assign(current)
        return best_weights

    stopped_early = False
    epoch_seconds = []
    while int(state["epoch"].numpy()) < cfg.epochs:
        epoch = int(state["epoch"].numpy())
        # checked here, not after the epoch's save: a run that stopped early and was then killed
        # (or failed) before its export goes straight to the export when restarted
        if epoch > 0 and int(state["bad_epochs"].numpy()) >= cfg.patience:
            log.info("early stopping: validation loss has not improved for %d epoch(s)", cfg.patience)
            stopped_early = True
            break
        skip = int(state["step_in_epoch"].numpy())
        if cfg.max_steps and int(state["global_step"].numpy()) >= cfg.max_steps:
            break
        t0 = time.perf_counter()
        seen = loss_sum = correct_sum = 0.0
        win = [0.0, 0.0, 0, time.perf_counter()]  # loss sum, correct, examples, since
        bar = _progress(steps_per_epoch, skip, f"epoch {epoch + 1}/{cfg.epochs}")
        last_ckpt = time.monotonic()
        for ids, mask, y in dataset(epoch, skip):
            loss, correct = train_step(ids, mask, y)
            n = int(t.shape(y)[0]) if strategy.num_replicas_in_sync == 1 else int(sum(int(t.shape(v)[0]) for v in strategy.experimental_local_results(y)))
            loss_v = float(loss) / strategy.num_replicas_in_sync
            seen += n
            loss_sum += loss_v * n
            correct_sum += float(correct)
            win[0] += loss_v * n
            win[1] += float(correct)
            win[2] += n
            state["step_in_epoch"].assign_add(1)
            g = int(state["global_step"].assign_add(1).numpy())
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct_sum / seen:.4f}")
            row = None
            if g % cfg.log_every == 0:
                el = time.perf_counter() - win[3]
                row = {"global_step": g, "epoch": epoch + 1, "step": int(state["step_in_epoch"].numpy()),
                       "loss": win[0] / win[2], "accuracy": win[1] / win[2], "learning_rate": lr_now(),
                       "examples_per_sec": win[2] / el if el > 0 else None}
                win = [0.0, 0.0, 0, time.perf_counter()]
            if g % eval_every == 0:
                vm = evaluate_arrays(predict, encoder, [val_texts[i] for i in sub], val_y[sub], cfg.normalization)
                row = (row or {"global_step": g, "epoch": epoch + 1, "step": int(state["step_in_epoch"].numpy())})
                row.update(val_loss=vm["log_loss"], val_accuracy=vm["accuracy"])
            if row:
                step_log.append(row)
                with tb.as_default(step=g):
                    for key in ("loss", "accuracy", "learning_rate", "examples_per_sec", "val_loss", "val_accuracy"):
                        if row.get(key) is not None:
                            t.summary.scalar(("train/" if not key.startswith("val") else "val_subset/") + key, row[key])
            if g % cfg.checkpoint_every == 0 or time.monotonic() - last_ckpt > 600:
                manager.save(checkpoint_number=g)
                last_ckpt = time.monotonic()
            if cfg.max_steps and g >= cfg.max_steps:
                break
        bar.close()
        if cfg.max_steps and int(state["global_step"].numpy()) >= cfg.max_steps and \
                int(state["step_in_epoch"].numpy()) < steps_per_epoch:
            manager.save(checkpoint_number=int(state["global_step"].numpy()))
            log.info("stopped at --max-steps %d", cfg.max_steps)
        seconds = time.perf_counter() - t0
        epoch_seconds.append(seconds)
        vm = evaluate_arrays(predict, encoder, val_texts, val_y, cfg.normalization)
        candidates = [(vm, "raw")]
        if ema:  # the averaged weights, scored with the raw ones swapped out (and back)
            with ema.swapped():
                vm_ema = evaluate_arrays(predict, encoder, val_texts, val_y, cfg.normalization)
            candidates.append((vm_ema, "ema"))
        soup = vm_soup = None
        if cfg.average_best and int(state["best_epoch"].numpy()) > 0:
            # the mean of the best weights so far and these (one fine-tuning run's two points: the
            # Sentiment140 sample's epochs 1 and 2 gave validation loss 0.385 against 0.388 and
            # 0.395, test accuracy 0.831 against 0.828 and 0.830)
            current = weights()
            soup = [(b + c) / 2 for b, c in zip(best_so_far(), current)]
            assign(soup)
            vm_soup = evaluate_arrays(predict, encoder, val_texts, val_y, cfg.normalization)
            assign(current)
            candidates.append((vm_soup, "average"))
        best_vm, kept = min(candidates, key=lambda c: c[0]["log_loss"])
        improved = best_vm["log_loss"] < float(state["best_val_loss"].numpy())
        if improved:
            if kept == "average":
                assign(soup)
            with ema.swapped() if kept == "ema" else contextlib.nullcontext():
                model.save_weights(str(run.best_dir / "weights"))
                if cfg.average_best:
                    best_weights[:] = weights()
            if kept == "average":
                assign(current)
            state["best_val_loss"].assign(best_vm["log_loss"])
            state["best_epoch"].assign(epoch + 1)
            state["best_is_ema"].assign(int(kept == "ema"))
            state["best_is_average"].assign(int(kept == "average"))
            state["bad_epochs"].assign(0)
        else:
            state["bad_epochs"].assign_add(1)
        epoch_log.append({"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "accuracy": correct_sum / max(seen, 1),
                          "val_loss": vm["log_loss"], "val_accuracy": vm["accuracy"], "val_roc_auc": vm["roc_auc"],
                          "seconds": seconds, "examples_per_sec": seen / seconds if seconds else None,
                          "best": int(improved), "val_loss_ema": vm_ema["log_loss"] if ema else None,
                          "val_accuracy_ema": vm_ema["accuracy"] if ema else None,
                          "kept": kept if improved else "",
                          "val_loss_average": vm_soup["log_loss"] if vm_soup else None,
                          "val_accuracy_average": vm_soup["accuracy"] if vm_soup else None})
        with tb.as_default(step=epoch + 1):
            t.summary.scalar("epoch/val_loss", vm["log_loss"])
            t.summary.scalar("epoch/val_accuracy", vm["accuracy"])
            t.summary.scalar("epoch/train_loss", loss_sum / max(seen, 1))
            if ema:
                t.summary.scalar("epoch/val_loss_averaged_weights", vm_ema["log_loss"])
        log.info("epoch %d: loss %.4f acc %.4f | val_loss %.4f val_acc %.4f auc %.4f%s%s | %.0fs, %.1f ex/s%s",
                 epoch + 1, loss_sum / max(seen, 1), correct_sum / max(seen, 1), vm["log_loss"], vm["accuracy"],
                 vm["roc_auc"] or float("nan"),
                 f" | averaged weights: val_loss {vm_ema['log_loss']:.4f} val_acc {vm_ema['accuracy']:.4f}" if ema else "",
                 f" | mean with the best so far: val_loss {vm_soup['log_loss']:.4f} val_acc {vm_soup['accuracy']:.4f}"
                 if vm_soup else "", seconds, seen / seconds if seconds else 0,
                 {"raw": " (best)", "ema": " (best, averaged weights)", "average": " (best, mean with the best so far)"}[kept]
                 if improved else "")
        plot(run.dir)
        if cfg.max_steps and int(state["global_step"].numpy()) >= cfg.max_steps:
            break
        state["epoch"].assign_add(1)
        state["step_in_epoch"].assign(0)
        manager.save(checkpoint_number=int(state["global_step"].numpy()))
    tb.flush()

    model.load_weights(str(run.best_dir / "weights")).expect_partial()
    epochs_rows = epoch_log.rows()
    training_info = {
        "config": dataclasses.asdict(cfg), "base_model_path": base_path, "data": summary,
        "steps_per_epoch": steps_per_epoch, "global_steps": int(state["global_step"].numpy()),
        "best_epoch": int(state["best_epoch"].numpy()), "stopped_early": stopped_early,
        "kept_weights": "ema" if int(state["best_is_ema"].numpy()) else
                        "average" if int(state["best_is_average"].numpy()) else "raw",
        "epochs": epochs_rows, "devices": [g.name for g in gpus] or ["CPU"], "mixed_precision": mixed,
        "replicas": strategy.num_replicas_in_sync,
    }
    artifact = export_artifact(run, model, encoder, tok_dir, base_cfg, training_info)
    run.done_file.write_text(json.dumps({"artifact": str(artifact)}))
    return artifact


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        cfg = parse_args(argv)
        artifact = train(cfg)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main())
