"""Training data: stream labelled files into cleaned, de-duplicated, seeded splits on disk, then
stream shuffled, dynamically padded batches from them.

Everything is chunked: the source is parsed 50k rows at a time into Parquet; de-duplication and
sampling look only at (id, label, hash) columns; training reads one shard at a time. The split is
decided by a seeded hash of the tweet id, so duplicate ids never straddle splits, the split of a
row does not depend on the other rows, and it can be re-derived from (file, seed) at evaluation.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from sentiment_core.labelled import ReadStats, read_labelled
from sentiment_core.text import normalize_all

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SHARD_ROWS = 100_000  # rows per training shard (one shard in memory at a time)
SORT_WINDOW = 50  # batches whose rows are sorted by length together (bucketing window)


def _h64(seed: int, salt: str, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\x1f{salt}\x1f{key}".encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Source:
    path: str
    fmt: str = "auto"
    text_col: str = "text"
    label_col: str = "label"
    id_col: str | None = None
    label_map: tuple[tuple[str, str], ...] = ()  # table format: raw value -> negative|neutral|positive

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def prepare(sources: Sequence[Source], out_dir: Path, seed: int, max_rows: int | None = None,
            holdout: Sequence[Source] = ()) -> dict:
    """Write ``out_dir/{train-*.parquet, validation.parquet, test.parquet}`` and return a summary
    with counts (read, dropped by reason, kept per split) and a fingerprint per split.

    Rows whose id or text is in a ``holdout`` file (an evaluation set) are dropped and counted, so
    that a test set drawn from the same pool as the training files never leaks into training."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    all_path = out_dir / "all.parquet"
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.int8()),
                        ("source", pa.string()), ("h_split", pa.uint64()), ("h_sample", pa.uint64())])
    per_source = {}
    with pq.ParquetWriter(all_path, schema) as w:
        for src in sources:
            stats = ReadStats()
            for chunk in read_labelled(src.path, src.fmt, stats, text_col=src.text_col,
                                       label_col=src.label_col, id_col=src.id_col, label_map=src.label_map):
                w.write_table(pa.table({
                    "id": chunk.ids, "text": chunk.texts, "label": pa.array(chunk.labels, pa.int8()),
                    "source": [chunk.source] * len(chunk.ids),
                    "h_split": pa.array([_h64(seed, "split", i) for i in chunk.ids], pa.uint64()),
                    "h_sample": pa.array([_h64(seed, "sample", i) for i in chunk.ids], pa.uint64()),
                }, schema=schema))
            per_source[src.path] = stats.as_dict()
            log.info("read %s: %s", src.path, stats.as_dict())

    keys = pq.read_table(all_path, columns=["id", "label", "h_split", "h_sample"])
    n = keys.num_rows
    dropped = {}
    for s in per_source.values():
        for reason, c in s["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + c
    if n == 0:
        raise ValueError(f"no labelled rows left after cleaning {[s.path for s in sources]} "
                         f"(dropped: {dropped}); check the file and --format")
    # Duplicate ids: all rows of an id whose labels conflict are dropped; of consistent
    # duplicates the first row is kept.
    idx = pa.array(np.arange(n, dtype=np.int64))
    g = pa.table({"id": keys["id"], "label": keys["label"], "row": idx}).group_by("id").aggregate(
        [("label", "min"), ("label", "max"), ("row", "min"), ("row", "count")])
    conflicting = g.filter(pc.not_equal(g["label_min"], g["label_max"]))
    keep = np.zeros(n, dtype=bool)
    consistent = g.filter(pc.equal(g["label_min"], g["label_max"]))
    keep[consistent["row_min"].to_numpy()] = True
    conflict_rows = int(pc.sum(conflicting["row_count"]).as_py() or 0)
    dup_rows = int(pc.sum(consistent["row_count"]).as_py() or 0) - consistent.num_rows
    dropped["conflicting_label_duplicate_id"] = conflict_rows
    dropped["duplicate_id"] = dup_rows
    if holdout:  # the same tweet by id, or the same text (a table without ids keys rows by their text)
        held_ids, held_texts = set(), set()
        for h in holdout:
            for c in read_labelled(h.path, h.fmt, ReadStats(), text_col=h.text_col, label_col=h.label_col,
                                   id_col=h.id_col, label_map=h.label_map):
                held_ids.update(c.ids)
                held_texts.update(c.texts)
        texts = pq.read_table(all_path, columns=["text"])["text"]
        in_holdout = (pc.is_in(keys["id"], value_set=pa.array(sorted(held_ids), pa.string())).to_numpy(zero_copy_only=False)
                      | pc.is_in(texts, value_set=pa.array(sorted(held_texts), pa.string())).to_numpy(zero_copy_only=False))
        del texts
        dropped["in_holdout"] = int((keep & in_holdout).sum())
        keep &= ~in_holdout
    if max_rows is not None and keep.sum() > max_rows:
        h_sample = keys["h_sample"].to_numpy()
        cand = np.flatnonzero(keep)
        chosen = cand[np.argsort(h_sample[cand], kind="stable")[:max_rows]]
        dropped["not_sampled"] = int(keep.sum()) - max_rows
        keep[:] = False
        keep[chosen] = True
    u = keys["h_split"].to_numpy() / 2.0**64
    bounds = np.cumsum(SPLIT_FRACTIONS)
    split_of = np.searchsorted(bounds[:-1], u, side="right")  # 0 train, 1 validation, 2 test
    del keys, g

    n_train = int((keep & (split_of == 0)).sum())
    n_shards = max(1, -(-n_train // SHARD_ROWS))
    writers, fp = {}, {s: [0, 0, 0] for s in SPLITS}  # rows, hash sum, positives
    out_schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.int8())])

    def writer(name):
        if name not in writers:
            writers[name] = pq.ParquetWriter(out_dir / f"{name}.parquet", out_schema)
        return writers[name]

    row0 = 0
    for batch in pq.ParquetFile(all_path).iter_batches(batch_size=65536, columns=["id", "text", "label", "h_sample"]):
        m = batch.num_rows
        k = keep[row0 : row0 + m]
        sp = split_of[row0 : row0 + m]
        row0 += m
        t = pa.Table.from_batches([batch])
        for si, split in enumerate(SPLITS):
            sel = k & (sp == si)
            if not sel.any():
                continue
            part = t.filter(pa.array(sel))
            ids, texts, labels = part["id"].to_pylist(), part["text"].to_pylist(), part["label"].to_numpy()
            acc = fp[split]
            acc[0] += len(ids)
            acc[2] += int(labels.sum())
            acc[1] = (acc[1] + sum(_h64(0, "fp", f"{i}\x1f{l}\x1f{x}") for i, l, x in zip(ids, labels, texts))) % 2**64
            if split == "train":
                shard = (part["h_sample"].to_numpy() % n_shards) if n_shards > 1 else np.zeros(len(ids), int)
                for s in np.unique(shard):
                    writer(f"train-{s:05d}").write_table(part.filter(pa.array(shard == s)).select(["id", "text", "label"]))
            else:
                writer(split).write_table(part.select(["id", "text", "label"]))
    for w in writers.values():
        w.close()
    all_path.unlink()
    splits = {s: {"rows": fp[s][0], "positives": fp[s][2], "fingerprint": f"{fp[s][0]}-{fp[s][1]:016x}"} for s in SPLITS}
    for s in SPLITS:
        if fp[s][0] == 0:
            raise ValueError(f"the {s} split is empty ({int(keep.sum())} rows kept after cleaning); "
                             "give more data or a larger --max-rows")
    summary = {
        "sources": [s.as_dict() for s in sources], "holdout": [h.as_dict() for h in holdout],
        "seed": seed, "max_rows": max_rows,
        "per_source": per_source, "rows_read": sum(s["rows"] for s in per_source.values()),
        "dropped": dropped, "kept": int(keep.sum()), "splits": splits, "train_shards": n_shards,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def read_split(data_dir: Path, split: str):
    """(ids, texts, labels) of a validation/test split, or the whole train split."""
    import pyarrow.parquet as pq

    files = sorted(Path(data_dir).glob("train-*.parquet")) if split == "train" else [Path(data_dir) / f"{split}.parquet"]
    t = [pq.read_table(f) for f in files]
    ids = [i for x in t for i in x["id"].to_pylist()]
    texts = [i for x in t for i in x["text"].to_pylist()]
    labels = np.concatenate([x["label"].to_numpy() for x in t]).astype(np.float32)
    return ids, texts, labels


class TrainBatches:
    """Deterministic, shuffled, length-bucketed training batches per epoch.

    Epoch e's order depends only on (seed, e): shards in a random order, rows shuffled within a
    shard, then in windows of SORT_WINDOW batches rows are sorted by token length, cut into
    batches and the batches shuffled. So a resumed run can skip exactly the batches it had done.
    ``fixed_length`` pads every batch to that length instead (the naive baseline)."""

    def __init__(self, data_dir: Path, encoder, normalization: str, batch_size: int, seed: int,
                 fixed_length: int | None = None):
        import pyarrow.parquet as pq

        self.shards = sorted(Path(data_dir).glob("train-*.parquet"))
        self.sizes = [pq.ParquetFile(f).metadata.num_rows for f in self.shards]
        self.encoder, self.normalization = encoder, normalization
        self.batch_size, self.seed, self.fixed_length = batch_size, seed, fixed_length

    @property
    def rows(self) -> int:
        return sum(self.sizes)

    def _windows(self, n: int) -> list[int]:
        w = self.batch_size * SORT_WINDOW
        return [min(w, n - s) for s in range(0, n, w)]

    def steps_per_epoch(self) -> int:
        return sum(-(-m // self.batch_size) for n in self.sizes for m in self._windows(n))

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (input_ids, attention_mask, labels) for one epoch, skipping the first ``skip``."""
        import pyarrow.parquet as pq

        rng = np.random.default_rng([self.seed, epoch])
        step = 0
        for shard_i in rng.permutation(len(self.shards)):
            t = pq.read_table(self.shards[shard_i], columns=["text", "label"])
            perm = rng.permutation(t.num_rows)
            texts = t["text"].to_numpy(zero_copy_only=False)[perm]
            labels = t["label"].to_numpy()[perm].astype(np.float32)
            start = 0
            for m in self._windows(t.num_rows):
                n_batches = -(-m // self.batch_size)
                order = rng.permutation(n_batches)  # drawn even when skipped: keeps rng in step
                if step + n_batches <= skip:
                    step += n_batches
                    start += m
                    continue
                seqs = self.encoder.encode(normalize_all(texts[start : start + m], self.normalization))
                y = labels[start : start + m]
                by_len = np.argsort([len(s) for s in seqs], kind="stable")
                for b in order:
                    if step >= skip:
                        idx = by_len[b * self.batch_size : (b + 1) * self.batch_size]
                        ids, mask = self.encoder.pad([seqs[i] for i in idx], self.fixed_length)
                        yield ids, mask, y[idx]
                    step += 1
                start += m
