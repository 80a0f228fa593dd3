"""Texts -> int32 ``input_ids`` / ``attention_mask``, with the artifact's own fast tokenizer.

Tweets are short (about 23 WordPiece tokens on average), so padding every row to ``max_length``
wastes most of the model's work. Rows are padded to the longest row of their mini-batch, rounded
up to a multiple of ``multiple``: ``PAD_MULTIPLE`` (8) for TensorFlow, whose traced functions are
reused per shape; 1 for ONNX Runtime, which has no per-shape cost (rounding up to 8 cost it ~14% of
its work on real tweets). The scorer additionally sorts rows by length so that each mini-batch
holds rows of similar length.

Host time matters on a GPU, where tokenizing, not the model, bounds a process's throughput. The
normalizer of BERT's tokenizer (clean-up, CJK spacing, NFD, accent stripping, lower-casing, all
tracking character alignments) is about a third of its time. A text whose every character it
leaves alone, apart from lower-casing, skips it: lower-cased in Python, tokenized by a copy of the
tokenizer without a normalizer; the ids are exactly the full pipeline's (checked on every real
tweet file of the project, and in the tests). Which characters qualify is asked of the Rust
normalizer itself, once per character when the encoder is built, so Python's Unicode tables and the
tokenizer's never have to agree. Most English tweets qualify (99% of Sentiment140, 84% of the v2
sample, English tweets with emoji and curly quotes too); CJK, Thai, Korean, accented letters and
emoji joined by ZWJ or variation selectors take the full pipeline.
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

PAD_MULTIPLE = 8
# blocks whose characters are tried for the shortcut (any other character takes the full pipeline):
# Latin-1 to CJK punctuation and kana (accents, punctuation, symbols, Greek, Cyrillic, Arabic, ...),
# and the emoji planes; not the ideographs and Hangul syllables the normalizer always changes
_CANDIDATES = (range(0x80, 0x3100), range(0xA000, 0xAC00), range(0xF900, 0xFFFF), range(0x1F000, 0x1FB00))


class TextEncoder:
    """A ``tokenizers`` (Rust) WordPiece tokenizer with truncation at ``max_length``."""

    def __init__(self, tokenizer_file: str | Path, max_length: int):
        from tokenizers import Tokenizer

        self.path = str(tokenizer_file)
        self.max_length = int(max_length)
        self._tok = Tokenizer.from_file(self.path)
        self._tok.no_padding()
        self._tok.enable_truncation(self.max_length)
        pad = self._tok.token_to_id("[PAD]")
        self.pad_id = 0 if pad is None else pad
        config = self._tok.to_str()  # with the truncation and padding set above
        self._normalizer = json.loads(config).get("normalizer") or {}
        self._plain = None  # the tokenizer without its normalizer, where the shortcut is exact
        if self._normalizer.get("type") == "BertNormalizer":
            self._lower = bool(self.lowercase)
            self._plain = Tokenizer.from_str(config)
            self._plain.normalizer = None
            self._unsafe = self._unsafe_chars()

    def _unsafe_chars(self) -> re.Pattern:
        """A pattern matching any character that takes the full pipeline. A character is safe when
        the normalizer maps it to itself (printable ASCII: to its lower case), it has a combining
        class of 0 (NFD cannot reorder it against its neighbours) and, lower-casing, ``str.lower``
        leaves it alone (no context rules such as final sigma). Added tokens ([CLS], [MASK], ...)
        are matched in the raw text, before lower-casing: their first characters (and any whose
        lower case is one) are unsafe. About 0.1 s, once per encoder."""
        normalize = self._tok.normalizer.normalize_str
        firsts = {t.content[0] for t in self._tok.get_added_tokens_decoder().values() if t.content}
        safe = []
        for cp in (*range(0x20, 0x7F), *(cp for r in _CANDIDATES for cp in r)):
            c = chr(cp)
            if c in firsts or (self._lower and c.lower() in firsts):
                continue
            ascii_ = cp < 0x80
            if (ascii_ or (unicodedata.combining(c) == 0 and (not self._lower or c.lower() == c))) \
                    and normalize(c) == (c.lower() if self._lower and ascii_ else c):
                if safe and safe[-1][1] == cp - 1:
                    safe[-1][1] = cp
                else:
                    safe.append([cp, cp])
        ranges = "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in safe)
        return re.compile(f"[^{ranges}]")

    @property
    def lowercase(self) -> bool | None:
        """Whether the tokenizer lower-cases (from tokenizer.json's normalizer), None if unknown."""
        norm = self._normalizer
        if norm.get("type") == "BertNormalizer":
            return bool(norm.get("lowercase"))
        if norm.get("type") == "Sequence":
            return any(n.get("type") == "Lowercase" for n in norm.get("normalizers", []))
        return norm.get("type") == "Lowercase" or None

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text ([CLS] ... [SEP]), truncated, unpadded: the tokenizer's own ids, with
        the shortcut of the module's docstring. ``encode_batch_fast`` skips the character offsets
        scoring never reads (same ids, ~15% less time)."""
        texts = list(texts)
        if self._plain is None:
            return [e.ids for e in self._tok.encode_batch_fast(texts, add_special_tokens=True)]
        unsafe = self._unsafe.search
        plain = [unsafe(t) is None for t in texts]
        ids: list[list[int]] = [[]] * len(texts)
        for want, tok in ((True, self._plain), (False, self._tok)):
            rows = [i for i, p in enumerate(plain) if p is want]
            if rows:
                part = [texts[i].lower() for i in rows] if want and self._lower else [texts[i] for i in rows]
                for i, e in zip(rows, tok.encode_batch_fast(part, add_special_tokens=True)):
                    ids[i] = e.ids
        return ids

    def pad(self, seqs: Sequence[Sequence[int]], length: int | None = None,
            multiple: int = PAD_MULTIPLE) -> tuple[np.ndarray, np.ndarray]:
        """Pad token id lists into int32 (input_ids, attention_mask) of shape [n, L].

        L is ``length`` when given (fixed padding), else the longest row rounded up to
        ``multiple`` and capped at max_length."""
        lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        if length is None:
            longest = int(lens.max()) if len(lens) else 1
            length = min(-(-longest // multiple) * multiple, self.max_length)
        ids = np.full((len(seqs), length), self.pad_id, dtype=np.int32)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
        mask = (np.arange(length)[None, :] < lens[:, None]).astype(np.int32)
        return ids, mask

    def __call__(self, texts: Sequence[str], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.pad(self.encode(texts), length)

    def sorted_batches(self, texts: Sequence[str], batch_size: int,
                       multiple: int = PAD_MULTIPLE) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (row indices, input_ids, attention_mask) over mini-batches of rows sorted by
        token length, each padded to its own longest row. Callers scatter results back by index."""
        return self.length_batches(self.encode(texts), batch_size, multiple)

    def length_batches(self, seqs: Sequence[Sequence[int]], batch_size: int,
                       multiple: int = PAD_MULTIPLE) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """:meth:`sorted_batches` over token id lists already made (by this encoder or another)."""
        lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        order = np.argsort(lens, kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = self.pad([seqs[i] for i in idx], multiple=multiple)
            yield idx, ids, mask
