"""Tests for sentiment_core.readers: archive files -> canonical tweets / rejects / deletes.

Expected values were read off the fixture JSON (by eye and with jq), not produced by the reader.
Fixture sources: tests/fixtures/README.md.
"""
from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import lzma
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from sentiment_core import readers, schema
from sentiment_core.readers import (
    FORMATS, detect_format, list_input_files, open_lines, parse_sentiment140_line,
    parse_v1_line, parse_v2_line, read_file,
)

FIX = Path(__file__).resolve().parent / "fixtures" / "archives"
V1_SAMPLE = FIX / "v1_sample.jsonl"
V1_BAD = FIX / "v1_bad.jsonl"
V2_PAGE = FIX / "v2_page.jsonl"
V2_FLAT = FIX / "v2_flat.jsonl"
V2_STREAM = FIX / "v2_stream.jsonl"

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_V1 = SHARED / "archives" / "twitter-v1.1" / "2021-01-01-0729.json.bz2"
REAL_V2 = SHARED / "archives" / "twitter-v2"
REAL_S140 = SHARED / "sentiment140" / "training.44k.csv"

UTC = dt.timezone.utc
COLUMNS = {"tweet": schema.TWEET_COLUMNS, "reject": schema.REJECT_COLUMNS,
           "delete": schema.DELETE_COLUMNS}


def records(path, **kw):
    out = list(read_file(str(path), **kw))
    for kind, rec in out:  # every record has exactly its table's columns
        assert tuple(rec) == COLUMNS[kind], (kind, tuple(rec))
    return out


def of_kind(recs, kind):
    return [r for k, r in recs if k == kind]


def by_id(recs):
    return {r["tweet_id"]: r for r in of_kind(recs, "tweet")}


def kinds(recs):
    return Counter(k for k, _ in recs)


# ---------------------------------------------------------------------------------- v1.1

V1_TEXTS = {
    # plain English
    "1344908505908613120": "missed the whole thing :(",
    # truncated tweet: extended_tweet.full_text, not the "…" text
    "1344908476565352449": (
        "Last year we rang in the new year by getting wasted and deep frying food and look how "
        "that turned out, so we rang in this year stone-cold sober with turkey wraps"),
    "1344908476582129664": (
        "Mientras unos se divierten festejando el año nuevo, en fiestas con cientos de personas, "
        "otros estamos en nuestras casas sufriendo por pérdidas humanas de familiare."),
    # retweet of a truncated tweet: the retweeted status's extended full text, no "RT @x:" prefix
    "1344908552050098178": (
        "seulgi said that practice was so fun and loud as five that she didnt even realize how "
        "tiring practice was :(( and that wendy would practice choreo before hand just in case "
        "she forgot... seulgi said OT5 forever and always"),
    "1344908489131315200": (
        "G: พี่เค้าเป็นพระอาทิตย์หรอครับ? ผมไม่รู้เลยนะครับเนี้ย!! \n\nพนข: ปี 2020 เจ้าเล่ห์ขึ้นนะเนี้ย!\n\n"
        "G: ได้พี่มิวมาครับ\n\n... แหมมมมมมมมมม!!  \U0001f644\U0001f644\U0001f644\n\n"
        "#MayachannelxGulf2021"),
    # plain retweet: the retweeted status's text
    "1344908556265512961": "Talking to yourself can make your brain work more efficiently.",
    # retweet of a quote tweet
    "1344908577249452032": "This is the funniest shit I've seen the past week. I'm over joyed.",
    # quote tweet: its own text only
    "1344908589815586817": "But i am already unhappy",
    # HTML entities are kept as they are (normalisation happens elsewhere)
    "1344908539467206658": ("&amp; i am careful what tweets/posts i like to let them know that "
                            "y’all got me in my feels.."),
    # Japanese with emoji and a newline; Thai
    "1344908690478878720": "あけましておめでと〜\U0001f305\U0001f304\nことしもよろしくお願いします〜！",
    "1344908648531693571": "ยูตะะะะแต่งงานนกันมั้ยยย",
}
V1_RETWEETS = {"1344908489131315200", "1344908552050098178", "1344908556273819648",
               "1344908556265512961", "1344908577249452032", "1344908606580264960"}
V1_DELETES = [  # (tweet_id, user_id, timestamp_ms), in file order
    ("1343257166493446144", "1267313822269952000", 1609486141254),
    ("1344908443023380482", "1337893306873737216", 1609486141631),
    ("1333553749046935552", "1552145774", 1609486141949),
    ("1292006722672844800", "1149703554690629633", 1609486142007),
    ("1025394207626878978", "1591102700", 1609486142340),
    ("1162191596177125377", "1136439435610820608", 1609486142426),
    ("1096098248660373509", "1043501414360600577", 1609486142733),
    ("1344480993101508616", "1216680770548355072", 1609486142948),
]


def test_v1_sample_counts_and_texts():
    recs = records(V1_SAMPLE)
    assert kinds(recs) == {"tweet": 20, "delete": 8}
    tweets = by_id(recs)
    assert len(tweets) == 20
    for tweet_id, text in V1_TEXTS.items():
        assert tweets[tweet_id]["text"] == text, tweet_id
    assert {i for i, t in tweets.items() if t["is_retweet"]} == V1_RETWEETS
    assert all(t["source_file"] == str(V1_SAMPLE) for t in tweets.values())


def test_v1_sample_fields():
    tweets = by_id(records(V1_SAMPLE))
    t = tweets["1344908690478878720"]
    assert t["user"] == "onoawa" and t["lang"] == "ja" and t["is_retweet"] is False
    assert t["created_at"] == dt.datetime(2021, 1, 1, 7, 29, 53, tzinfo=UTC)
    assert t["created_at"].utcoffset() == dt.timedelta(0)
    assert t["dt"] == dt.date(2021, 1, 1)
    rt = tweets["1344908552050098178"]
    assert (rt["user"], rt["lang"], rt["is_retweet"]) == ("smyoufreak", "en", True)
    assert tweets["1344908535268847617"]["lang"] == "und"
    langs = Counter(t["lang"] for t in tweets.values())
    assert langs == {"en": 10, "ko": 3, "es": 2, "th": 2, "und": 1, "hi": 1, "ja": 1}


def test_v1_sample_deletes():
    deletes = of_kind(records(V1_SAMPLE), "delete")
    got = [(d["tweet_id"], d["user_id"], d["deleted_at"]) for d in deletes]
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    want = [(i, u, epoch + dt.timedelta(milliseconds=ms)) for i, u, ms in V1_DELETES]
    assert got == want
    assert want[0][2] == dt.datetime(2021, 1, 1, 7, 29, 1, 254000, tzinfo=UTC)
    assert all(d["source_file"] == str(V1_SAMPLE) for d in deletes)


def _zstd(data: bytes, window_log: int | None = None) -> bytes:
    """One zstd frame that does not say its size, so it keeps the window asked for (a frame of
    known size gets a window no larger than itself)."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log or 0, enable_ldm=bool(window_log))
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as w:
        w.write(data)
    return out.getvalue()


def _per_4_lines(compress):
    """Concatenated streams of 4 lines each (pbzip2, pzstd, zstd -T, xz -T write such files)."""
    def run(data: bytes) -> bytes:
        lines = data.splitlines(keepends=True)
        return b"".join(compress(b"".join(lines[i:i + 4])) for i in range(0, len(lines), 4))
    return run


@pytest.mark.parametrize("compress,name", [
    (gzip.compress, "sample.jsonl.gz"),
    (bz2.compress, "sample.jsonl.bz2"),
    (gzip.compress, "sample_gzip_without_extension.jsonl"),  # magic bytes, not the name
    (bz2.compress, "sample_bz2_named.gz"),
    (lzma.compress, "sample.jsonl.xz"),
    (_per_4_lines(lzma.compress), "several_streams.jsonl.xz"),
    (_zstd, "sample.jsonl.zst"),
    (_per_4_lines(_zstd), "several_frames.jsonl.zst"),
    # zstd --long=31, as large dumps are written: a 2 GB window, over the decoder's default limit
    (lambda data: _zstd(data, window_log=31), "long_window.jsonl.zst"),
])
def test_v1_compressed_copies_match_plain(tmp_path, compress, name):
    path = tmp_path / name
    path.write_bytes(compress(V1_SAMPLE.read_bytes()))
    plain = records(V1_SAMPLE, source_file="x")
    packed = records(path, source_file="x")
    assert packed == plain


def test_v1_bad_lines():
    recs = records(V1_BAD)
    rejects = [(r["line_no"], r["reason"]) for r in of_kind(recs, "reject")]
    assert rejects == [
        (1, schema.MALFORMED_JSON),
        (2, schema.MISSING_ID),
        (3, schema.BAD_TIMESTAMP),
        (4, schema.EMPTY_TEXT),
        (5, schema.UNKNOWN_RECORD),  # {"limit": ...}; line 6 is blank: no record
        (7, schema.UNKNOWN_RECORD),  # a JSON array
        (9, schema.EMPTY_TEXT),  # no text at all
        (11, schema.MISSING_ID),  # delete notice without an id
        (12, schema.UNKNOWN_RECORD),  # scrub_geo
        (13, schema.BAD_TIMESTAMP),  # no created_at
    ]
    for r in of_kind(recs, "reject"):
        assert r["source_file"] == str(V1_BAD)
        assert r["detected_at"].tzinfo is not None
        assert r["raw"] and r["raw"].startswith(("{", "["))
    tweets = by_id(recs)
    assert set(tweets) == {"908", "914"}
    t = tweets["908"]  # numeric id only, +0200 offset, lang null
    assert t["created_at"] == dt.datetime(2021, 1, 1, 7, 29, tzinfo=UTC)
    assert (t["text"], t["user"], t["lang"], t["is_retweet"]) == (
        "numeric id only &amp; an offset", "h", None, False)
    # a retweet whose retweeted status has no text keeps its own text
    assert (tweets["914"]["text"], tweets["914"]["is_retweet"]) == ("RT @x: …", True)
    assert of_kind(recs, "delete") == [
        {"tweet_id": "910", "user_id": None, "deleted_at": None, "source_file": str(V1_BAD)}]
    # nothing vanishes: 13 non-blank lines, 13 records
    assert len(recs) == 13


def test_parse_v1_line_directly():
    assert parse_v1_line("", "f", 1) == []
    assert parse_v1_line("   ", "f", 1) == []
    [(kind, rec)] = parse_v1_line('{"status_withheld": {"id": 1}}', "f", 7)
    assert (kind, rec["reason"], rec["line_no"], rec["source_file"]) == (
        "reject", schema.UNKNOWN_RECORD, 7, "f")
    [(kind, rec)] = parse_v1_line('"just a string"', "f", 1)
    assert rec["reason"] == schema.UNKNOWN_RECORD
    line = ('{"id_str": "5", "created_at": "Fri Jan 01 07:29:00 +0000 2021", "text": "short…",'
            ' "full_text": "the full text", "user": {"screen_name": "u"}}')
    [(kind, rec)] = parse_v1_line(line, "f", 1)
    assert (kind, rec["text"], rec["lang"]) == ("tweet", "the full text", None)


def test_json_that_orjson_refuses_is_read_by_json_without_lone_surrogates():
    # a text cut inside an emoji keeps the first half of its surrogate pair as an escape: orjson
    # refuses the line, json takes it, and the lone half becomes U+FFFD (UTF-8, so Arrow and
    # Parquet, cannot hold it); NaN goes the same way, an integer over 64 bits is orjson's float
    head = '{"id_str": "9", "created_at": "Fri Jan 01 07:29:00 +0000 2021", "user": {"screen_name": "u"}, '
    [(kind, rec)] = parse_v1_line(head + '"text": "cut \\ud83d", "coordinates": NaN}', "f", 1)
    assert (kind, rec["text"]) == ("tweet", "cut \ufffd")
    [(kind, rec)] = parse_v1_line(head + '"text": "pair \\ud83d\\ude00 \\udc00"}', "f", 1)
    assert (kind, rec["text"]) == ("tweet", "pair \U0001f600 \ufffd")
    [(kind, rec)] = parse_v1_line(head + '"text": "ok", "n": 123456789012345678901234567890}', "f", 1)
    assert (kind, rec["text"]) == ("tweet", "ok")
    [(kind, rec)] = parse_v1_line(head + '"text": "broken"', "f", 3)
    assert (kind, rec["reason"], rec["line_no"]) == ("reject", schema.MALFORMED_JSON, 3)
    assert readers._classify('{"id_str": "1", "text": "x \\udc00"}') == "twitter-v1"


def test_long_raw_is_truncated():
    line = '{"limit": "' + "x" * 5000 + '"}'
    [(_, rec)] = parse_v1_line(line, "f", 1)
    assert rec["raw"] == schema.truncate_raw(line) and len(rec["raw"]) < 2100


def test_invalid_utf8_is_replaced_not_rejected(tmp_path):
    good = ('{"id_str": "7", "created_at": "Fri Jan 01 07:29:00 +0000 2021", '
            '"text": "caf\xc3\xa9 BAD_BYTE", "user": {"screen_name": "u"}}')
    raw = good.encode("latin-1").replace(b"BAD_BYTE", b"\xff\xfe ok")
    path = tmp_path / "bad_utf8.jsonl"
    path.write_bytes(raw + b"\n")
    [(kind, rec)] = records(path)
    assert kind == "tweet"
    assert rec["text"] == "café \ufffd\ufffd ok"


# ---------------------------------------------------------------------------------- corrupt files

def test_truncated_gzip(tmp_path):
    data = gzip.compress(V1_SAMPLE.read_bytes())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    _check_truncated(path)


@pytest.mark.parametrize("compress", [lzma.compress, _zstd])
def test_truncated_xz_and_zstd(tmp_path, compress):
    # zstandard's own stream reader ends quietly where a zstd file breaks off: the reader says so
    data = _per_4_lines(compress)(V1_SAMPLE.read_bytes())
    path = tmp_path / "cut.jsonl.z"
    path.write_bytes(data[: len(data) // 2])
    _check_truncated(path)


def test_garbage_after_zstd_magic_is_unreadable(tmp_path):
    path = tmp_path / "x.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"not really zstd" * 10)
    [(kind, rec)] = records(path)
    assert rec["reason"] == schema.UNREADABLE_FILE and "zstd" in rec["raw"]


def test_truncated_bz2(tmp_path):
    # multi-stream bz2 (as pbzip2 writes): one stream per 4 lines, so half the bytes hold whole
    # streams that decode before the break (a single 900k block would give nothing at all)
    lines = V1_SAMPLE.read_bytes().splitlines(keepends=True)
    data = b"".join(bz2.compress(b"".join(lines[i:i + 4])) for i in range(0, len(lines), 4))
    full = tmp_path / "full.jsonl.bz2"
    full.write_bytes(data)
    assert records(full, source_file="s") == records(V1_SAMPLE, source_file="s")
    path = tmp_path / "cut.jsonl.bz2"
    path.write_bytes(data[: len(data) // 2])
    _check_truncated(path)


@pytest.mark.parametrize("threads", [1, 2])
def test_bz2_decoded_by_blocks_in_threads_gives_the_library_bytes(tmp_path, monkeypatch, threads):
    # one stream of several 100k blocks, then more streams (as pbzip2 writes): every block decoded
    # in threads and put back in order, byte for byte what bz2 gives
    monkeypatch.setattr(readers, "_BZ2_THREADS", threads)
    import random

    rng = random.Random(7)
    text = b"".join(b"%d %s\n" % (i, bytes(rng.choice(b"abcdefgh ") for _ in range(60))) for i in range(12_000))
    data = bz2.compress(text, compresslevel=1) + bz2.compress(b"tail\n") + bz2.compress(b"")
    assert len(readers._bit_find(data, readers._BZ2_BLOCK)) >= 5
    path = tmp_path / "blocks.txt.bz2"
    path.write_bytes(data)
    with readers.open_data(str(path)) as f:
        assert f.read() == text + b"tail\n"
    assert [line for _, line in readers.open_lines(str(path))] == (text + b"tail\n").splitlines()


def test_a_damaged_bz2_stream_is_a_reject_after_the_lines_before_it(tmp_path):
    # a stream in the middle of a pbzip2-style file that does not decode: the lines before it,
    # then one truncated_file reject (bz2.BZ2File takes it for trailing garbage and ends there
    # without a word, losing the 16 lines after it)
    lines = V1_SAMPLE.read_bytes().splitlines(keepends=True)
    data = bytearray(b"".join(bz2.compress(b"".join(lines[i:i + 4])) for i in range(0, len(lines), 4)))
    middle = readers._bit_find(bytes(data), readers._BZ2_BLOCK)[3] // 8
    data[middle + 1000:middle + 1010] = b"\xff" * 10
    path = tmp_path / "damaged.jsonl.bz2"
    path.write_bytes(bytes(data))
    recs = records(path, source_file="s")
    assert recs[-1][0] == "reject" and recs[-1][1]["reason"] == schema.TRUNCATED_FILE
    assert recs[:-1] == records(V1_SAMPLE, source_file="s")[:12]
    header_only = tmp_path / "header.jsonl.bz2"
    header_only.write_bytes(bytes(data[:4]))
    assert [r["reason"] for _, r in records(header_only, source_file="s")] == [schema.TRUNCATED_FILE]


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress])
def test_a_damaged_stream_after_the_first_is_a_reject_not_the_end_of_the_file(tmp_path, compress):
    # bz2.BZ2File and lzma.LZMAFile take a stream after the first that does not decode for
    # trailing garbage and stop there without a word; here the reader says where the file broke
    lines = V1_SAMPLE.read_bytes().splitlines(keepends=True)
    streams = [compress(b"".join(lines[i:i + 4])) for i in range(0, len(lines), 4)]
    damaged = bytearray(streams[3])
    damaged[len(damaged) // 2:len(damaged) // 2 + 8] = b"\xff" * 8
    path = tmp_path / "damaged.jsonl.bin"
    path.write_bytes(b"".join(streams[:3]) + bytes(damaged) + b"".join(streams[4:]))
    recs = records(path, source_file="s")
    assert recs[-1][0] == "reject" and recs[-1][1]["reason"] == schema.TRUNCATED_FILE
    assert recs[:-1] == records(V1_SAMPLE, source_file="s")[:len(recs) - 1]
    assert 12 <= len(recs) - 1 < 16


def test_xz_stream_padding_is_read_past(tmp_path):
    # xz allows null bytes (in fours) between and after streams
    lines = V1_SAMPLE.read_bytes().splitlines(keepends=True)
    pad = b"\0" * 8
    path = tmp_path / "padded.jsonl.xz"
    path.write_bytes(lzma.compress(b"".join(lines[:10])) + pad + lzma.compress(b"".join(lines[10:])) + pad)
    assert records(path, source_file="s") == records(V1_SAMPLE, source_file="s")


def _check_truncated(path):
    recs = records(path, source_file="s")
    kind, last = recs[-1]
    assert kind == "reject" and last["reason"] == schema.TRUNCATED_FILE
    assert last["raw"] and len(last["raw"]) < 300
    good = recs[:-1]
    n_good_lines = last["line_no"] - 1
    assert 0 < n_good_lines < 28
    # the records before the break are exactly those of the first lines of the intact file
    assert good == records(V1_SAMPLE, source_file="s")[:n_good_lines]
    assert schema.TRUNCATED_FILE not in [r["reason"] for r in of_kind(good, "reject")]


def test_truncated_real_bz2_keeps_whole_blocks(tmp_path):
    if not REAL_V1.exists():
        pytest.skip("shared data not present")
    data = REAL_V1.read_bytes()
    path = tmp_path / "cut.json.bz2"
    path.write_bytes(data[: len(data) // 4])
    recs = records(path)
    assert recs[-1][1]["reason"] == schema.TRUNCATED_FILE
    assert len(recs) - 1 == recs[-1][1]["line_no"] - 1 > 100  # one record per line read


def test_missing_file_is_unreadable(tmp_path):
    [(kind, rec)] = records(tmp_path / "nope.jsonl.bz2")
    assert (kind, rec["reason"], rec["line_no"]) == ("reject", schema.UNREADABLE_FILE, None)
    assert "nope.jsonl.bz2" in rec["raw"]


def test_directory_is_unreadable(tmp_path):
    [(kind, rec)] = records(tmp_path)
    assert rec["reason"] == schema.UNREADABLE_FILE


def test_garbage_after_gzip_magic_is_unreadable(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    [(kind, rec)] = records(path)
    assert rec["reason"] == schema.UNREADABLE_FILE


def test_empty_files_yield_nothing(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "empty.jsonl.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "empty.jsonl.bz2").write_bytes(bz2.compress(b""))
    (tmp_path / "blank.jsonl").write_bytes(b"\n  \n\r\n\n")
    for name in ("empty.jsonl", "empty.jsonl.gz", "empty.jsonl.bz2", "blank.jsonl"):
        assert records(tmp_path / name) == [], name


def test_undetectable_file_rejects_every_line(tmp_path):
    path = tmp_path / "what.txt"
    path.write_text("hello\n\nworld\n")
    recs = records(path)
    assert [(r["line_no"], r["reason"], r["raw"]) for r in of_kind(recs, "reject")] == [
        (1, schema.UNKNOWN_RECORD, "hello"), (3, schema.UNKNOWN_RECORD, "world")]


def test_unknown_fmt_argument_raises():
    with pytest.raises(ValueError, match="unknown format"):
        list(read_file(str(V1_SAMPLE), fmt="twitter-v3"))


# ---------------------------------------------------------------------------------- open_lines

def test_open_lines_numbers_and_line_ends(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(b"a\r\n\nb\n\xff\nlast-no-newline")
    assert list(open_lines(str(path))) == [
        (1, b"a"), (2, b""), (3, b"b"), (4, b"\xff"), (5, b"last-no-newline")]
    gz = tmp_path / "lines.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert list(open_lines(str(gz))) == list(open_lines(str(path)))
    assert list(open_lines(path.as_uri())) == list(open_lines(str(path)))


def test_open_lines_long_lines_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "_CHUNK", 7)
    path = tmp_path / "long.txt"
    lines = [b"x" * 30, b"", b"yz", b"w" * 13]
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert [line for _, line in open_lines(str(path))] == lines


def test_open_lines_through_pyarrow_fs(tmp_path, monkeypatch):
    """The non-local branch (hdfs://, s3://, ...) exercised with pyarrow's file:// filesystem."""
    pytest.importorskip("pyarrow")
    path = tmp_path / "sample.jsonl.bz2"
    path.write_bytes(bz2.compress(V1_SAMPLE.read_bytes()))
    monkeypatch.setattr(readers, "_local_path", lambda p: None)  # force the pyarrow.fs branch
    via_arrow = list(open_lines(path.as_uri()))
    assert len(via_arrow) == 28
    assert records(path.as_uri(), source_file="s") == records(V1_SAMPLE, source_file="s")
    (tmp_path / "d" / "_tmp").mkdir(parents=True)
    (tmp_path / "d" / "b.json").write_text("{}")
    (tmp_path / "d" / "_tmp" / "c.json").write_text("{}")
    (tmp_path / "d" / ".hidden").write_text("{}")
    (tmp_path / "d" / "item_files.xml").write_text("<files/>")
    listed = list_input_files([(tmp_path / "d").as_uri()])
    assert listed == [(tmp_path / "d" / "b.json").as_uri()]
    assert listed.skipped == [(tmp_path / "d" / "item_files.xml").as_uri()]
    with pytest.raises(FileNotFoundError, match="input path does not exist"):
        list_input_files([(tmp_path / "missing").as_uri()])


# ---------------------------------------------------------------------------------- v2

V2_RT_TEXT = (
    "De manera simultánea, vuelven a asediar la frontera oeste de Rusia a través de Ucrania y la "
    "de Venezuela mediante Colombia. De esa forma, EEUU revive dos blancos geopolíticos de primer "
    "orden de la administración Obama. La pandilla del Partido Demócrata hace sentir su regreso.")
V2_QUOTE_TEXT = "Obama's third term is going great!" + "\U0001f644" * 18 + " https://t.co/rZcmOe4aN0"


def test_v2_page_fixture():
    recs = records(V2_PAGE)
    assert kinds(recs) == {"tweet": 7}
    tweets = by_id(recs)
    # retweet: text of the referenced tweet from includes.tweets; user from includes.users
    rt = tweets["1380242611781386245"]
    assert (rt["text"], rt["user"], rt["lang"], rt["is_retweet"]) == (
        V2_RT_TEXT, "Alexandravm12", "es", True)
    assert rt["created_at"] == dt.datetime(2021, 4, 8, 19, 34, 16, tzinfo=UTC)
    assert rt["dt"] == dt.date(2021, 4, 8)
    # plain, reply (own text, not the replied-to text), link-only, quote (own text)
    assert tweets["1380242596900044806"]["text"] == "Ok! And Ill bring my friends, Pencil, and Obama!"
    assert tweets["1380242586288328707"]["text"] == (
        "@TalkToTheFoot @JackPosobiec None of whom had access to either of the hard drives. Shows "
        "how inept and partisan the DOJ became under Obama.")
    assert tweets["1380242586288328707"]["user"] == "PDXPapaG"
    assert tweets["1380242586288328707"]["is_retweet"] is False
    assert (tweets["1380242432139354115"]["text"], tweets["1380242432139354115"]["lang"]) == (
        "https://t.co/Amw3lXDwUQ", "und")
    assert tweets["1380242403009966082"]["text"] == V2_QUOTE_TEXT
    assert tweets["1380242403009966082"]["is_retweet"] is False
    # page 2 (withheld.jsonl): an author missing from includes.users -> user None
    w = tweets["1404393119253250054"]
    assert (w["user"], w["is_retweet"]) == (None, True)
    assert w["text"] == ("@irshad_rathi's account has been withheld in India in response to a "
                         "legal demand. Learn more.")
    # a retweet whose referenced tweet is not included: its own text, still a retweet
    m = tweets["1404371697407463427"]
    assert (m["user"], m["is_retweet"]) == ("shankr_rcg", True)
    assert m["text"] == (
        "RT @rajeshsawhney: Tata SuperApp \n\nEither it’s a figment of media’s imagination or a "
        "pipe dream of the Tata Group.\n\nBuilding a super app is…")
    assert m["created_at"] == dt.datetime(2021, 6, 14, 9, 34, 39, tzinfo=UTC)


def test_v2_flat_fixture():
    recs = records(V2_FLAT)
    assert kinds(recs) == {"tweet": 6}
    tweets = by_id(recs)
    assert [t["tweet_id"] for t in of_kind(recs, "tweet")] == [
        "1380242611781386245", "1380242596900044806", "1380242432139354115",
        "1380242403009966082", "1380242080887402499", "1380242045265190917"]
    assert {i for i, t in tweets.items() if t["is_retweet"]} == {
        "1380242611781386245", "1380242080887402499"}
    # the embedded referenced tweet's text; entities kept as is
    assert tweets["1380242080887402499"]["text"] == (
        "I'm so old I remember Republicans scoffing &amp; jeering when Obama cried after Sandy Hook.")
    assert tweets["1380242080887402499"]["user"] == "cohbrbst"
    assert tweets["1380242045265190917"]["text"] == "@Its_Jus_Obama I hit you bro lmao"
    assert tweets["1380242045265190917"]["user"] == "_RickTheRuler_"
    # the same tweets read from the page form and the flattened form agree
    page = by_id(records(V2_PAGE))
    for tweet_id in ("1380242611781386245", "1380242596900044806", "1380242432139354115",
                     "1380242403009966082"):
        a = {k: v for k, v in tweets[tweet_id].items() if k != "source_file"}
        b = {k: v for k, v in page[tweet_id].items() if k != "source_file"}
        assert a == b, tweet_id


def test_v2_stream_fixture_with_truncated_last_line():
    recs = records(V2_STREAM)
    assert [k for k, _ in recs] == ["tweet", "reject"]
    t = recs[0][1]
    assert (t["tweet_id"], t["user"], t["lang"], t["is_retweet"]) == (
        "1377650277642338305", "dreasaurusrex92", "en", False)
    assert t["text"] == ("Got the doggo groomed because it’s been hot outside and now it’s 48 "
                         "degrees. @ Goin to the Dogs and Cats Grooming https://t.co/QHp3Dk7OeK")
    assert t["created_at"] == dt.datetime(2021, 4, 1, 15, 53, 16, tzinfo=UTC)
    r = recs[1][1]
    assert (r["reason"], r["line_no"], r["raw"]) == (
        schema.MALFORMED_JSON, 2, '{"data": {"author_id": "1021159080151404544"')


def test_v2_pages_without_tweets_are_counted():
    errors_only = ('{"errors": [{"title": "Not Found Error", "detail": "Could not find tweet"}],'
                   ' "meta": {"result_count": 0}}')
    [(kind, rec)] = parse_v2_line(errors_only, "f", 3)
    assert (kind, rec["reason"], rec["line_no"]) == ("reject", schema.UNKNOWN_RECORD, 3)
    [(kind, rec)] = parse_v2_line('{"data": [], "errors": [{"title": "x"}]}', "f", 1)
    assert rec["reason"] == schema.UNKNOWN_RECORD
    [(kind, rec)] = parse_v2_line('{"meta": {"result_count": 0}}', "f", 1)
    assert rec["reason"] == schema.UNKNOWN_RECORD
    assert parse_v2_line(" ", "f", 1) == []


def test_v2_note_tweet_and_bad_items():
    line = ('{"data": ['
            '{"id": "1", "text": "short…", "note_tweet": {"text": "the long form"},'
            ' "created_at": "2023-01-02T03:04:05.000Z", "author_id": "9"},'
            '{"id": "2", "text": "RT @a: x…", "created_at": "2023-01-02T03:04:05.000Z",'
            ' "referenced_tweets": [{"type": "retweeted", "id": "3"}]},'
            '{"text": "no id", "created_at": "2023-01-02T03:04:05.000Z"},'
            '{"id": "4", "text": "no date"},'
            '{"id": "5", "text": "  ", "created_at": "2023-01-02T03:04:05Z"},'
            ' 17],'
            ' "includes": {"users": [{"id": "9", "username": "nine"}],'
            '  "tweets": [{"id": "3", "text": "x…", "note_tweet": {"text": "x in full"}}]}}')
    recs = parse_v2_line(line, "f", 4)
    assert [k for k, _ in recs] == ["tweet", "tweet", "reject", "reject", "reject", "reject"]
    assert (recs[0][1]["text"], recs[0][1]["user"]) == ("the long form", "nine")
    assert recs[0][1]["created_at"] == dt.datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (recs[1][1]["text"], recs[1][1]["user"], recs[1][1]["is_retweet"]) == (
        "x in full", None, True)
    assert [r["reason"] for _, r in recs[2:]] == [
        schema.MISSING_ID, schema.BAD_TIMESTAMP, schema.EMPTY_TEXT, schema.UNKNOWN_RECORD]
    assert all(r["line_no"] == 4 for _, r in recs[2:])
    assert '"no id"' in recs[2][1]["raw"]  # raw is the offending tweet, not the whole page


# ---------------------------------------------------------------------------------- sentiment140

S140_GOOD = '"4","1467822272","Mon Apr 06 22:22:45 PDT 2009","NO_QUERY","ersle","I LOVE @Health4UandPets u guys r the best!! "'


def test_sentiment140_lines():
    [(kind, rec)] = parse_sentiment140_line(S140_GOOD, "s.csv", 5)
    assert kind == "tweet"
    assert rec == {
        "tweet_id": "1467822272",
        "created_at": dt.datetime(2009, 4, 7, 5, 22, 45, tzinfo=UTC),
        "dt": dt.date(2009, 4, 7),
        "user": "ersle", "lang": None,
        "text": "I LOVE @Health4UandPets u guys r the best!! ",
        "is_retweet": False, "source_file": "s.csv",
    }
    rt = '"0","1","Mon Apr 06 22:22:45 PDT 2009","NO_QUERY","u","RT @x: "quoted", with commas"'
    [(kind, rec)] = parse_sentiment140_line(rt, "s.csv", 1)
    assert (rec["text"], rec["is_retweet"]) == ('RT @x: "quoted", with commas', False)
    cases = {
        '"0","1","Mon Apr 06 22:22:45 PDT 2009","u","text"': schema.BAD_FIELD_COUNT,
        '0,1,Mon Apr 06 22:22:45 PDT 2009,NO_QUERY,u,text': schema.BAD_FIELD_COUNT,
        '"0","1","2009-04-06 22:22:45","NO_QUERY","u","text"': schema.BAD_TIMESTAMP,
        '"0","1","Mon Apr 06 22:22:45 PDT 2009","NO_QUERY","u","   "': schema.EMPTY_TEXT,
        '"0","","Mon Apr 06 22:22:45 PDT 2009","NO_QUERY","u","text"': schema.MISSING_ID,
    }
    for line, reason in cases.items():
        [(kind, rec)] = parse_sentiment140_line(line, "s.csv", 2)
        assert (kind, rec["reason"], rec["raw"]) == ("reject", reason, line), line
    assert parse_sentiment140_line("", "s.csv", 1) == []


def test_sentiment140_file_auto(tmp_path):
    path = tmp_path / "s140.csv"
    path.write_bytes((S140_GOOD + "\r\n" + '"0","2","bad date","NO_QUERY","u","t"\n').encode())
    recs = records(path)
    assert [k for k, _ in recs] == ["tweet", "reject"]
    assert recs[1][1]["line_no"] == 2 and recs[1][1]["reason"] == schema.BAD_TIMESTAMP


def test_sentiment140_texts_written_on_several_lines_are_one_record(tmp_path):
    """One's own tweets exported in this format by a CSV writer: a text with line breaks (a blank
    line too) is quoted over several lines. It reads as one tweet, numbered by its first line; a
    record never closed is one reject that holds all its lines, before the next record or at the end."""
    d = "Mon Apr 06 22:19:45 PDT 2009"
    body = (f'"4","1","{d}","NO_QUERY","u","first line\n\nthird, "quoted" line"\n'
            f'"0","2","{d}","NO_QUERY","u","one line"\n'
            f'"0","3","{d}","NO_QUERY","u","never\nclosed\n'
            f'"4","4","{d}","NO_QUERY","u","after\r\nit"\r\n'
            f'"0","5","{d}","NO_QUERY","u","cut at\nthe end')
    path = tmp_path / "own.csv"
    path.write_bytes(body.encode())
    recs = list(readers.read_numbered(str(path)))
    assert [(n, k) for n, (k, _) in recs] == [(1, "tweet"), (4, "tweet"), (5, "reject"), (7, "tweet"), (9, "reject")]
    assert recs[0][1][1]["text"] == 'first line\n\nthird, "quoted" line' and recs[3][1][1]["text"] == "after\nit"
    assert recs[2][1][1]["raw"] == f'"0","3","{d}","NO_QUERY","u","never\nclosed'
    assert recs[4][1][1]["raw"] == f'"0","5","{d}","NO_QUERY","u","cut at\nthe end'
    assert {r["reason"] for _, (k, r) in recs if k == "reject"} == {schema.BAD_FIELD_COUNT}


# ---------------------------------------------------------------------------------- detection

@pytest.mark.parametrize("path,fmt", [
    (V1_SAMPLE, "twitter-v1"), (V1_BAD, "twitter-v1"), (V2_PAGE, "twitter-v2"),
    (V2_FLAT, "twitter-v2"), (V2_STREAM, "twitter-v2"),
])
def test_auto_detection_matches_explicit_format(path, fmt):
    strip = lambda recs: [(k, {c: v for c, v in r.items() if c != "detected_at"}) for k, r in recs]
    assert strip(records(path)) == strip(records(path, fmt=fmt))


SNSCRAPE = FIX / "snscrape_sample.jsonl"


def test_snscrape_jsonl_gives_the_records_of_the_same_tweets_read_from_the_v1_archive():
    """snscrape's JSON Lines (its own Tweet.json(), made from the v1 sample's 20 tweets) are found
    by field name: the same ids, times, users, languages, texts and retweet marks as the archive."""
    assert readers.detect_file_format(str(SNSCRAPE)) == "json"
    got = [r for k, r in records(SNSCRAPE, source_file="s")]
    archive = of_kind(records(V1_SAMPLE, source_file="s"), "tweet")
    assert got == archive and len(got) == 20 and sum(r["is_retweet"] for r in got) == 6


def test_other_tools_tweet_objects_are_read_by_field_name():
    """A dataset export's objects: names compared without case, spaces and "_"; times as ISO, the
    v1.1 API's form or epoch (milliseconds past 1e11); each bad object one reject, with its reason."""
    lines = [
        '{"Tweet Id": "11", "Datetime": "2022-05-01 10:00:00+02:00", "Text": "so good", "Username": "ann", "Language": "en"}',
        '{"tweet_id": 12, "created_at": 1651392000000, "tweet": "epoch ms", "user": {"screen_name": "bob"}}',
        '{"id": "13", "timestamp": 1651392000, "content": "epoch seconds", "is_retweet": true}',
        '{"id": "14", "date": "Sun May 01 08:00:00 +0000 2022", "text": "v1.1 form", "lang": "es"}',
        '{"Tweet Id": "", "Datetime": "2022-05-01", "Text": "no id"}',
        '{"Tweet Id": "16", "Datetime": "soon", "Text": "bad time"}',
        '{"Tweet Id": "17", "Datetime": "2022-05-01", "Text": "  "}',
        '{"something": "else"}',
        '{"Tweet Id": "19", "Datetime": "2022-05-01", "Text": "fine", broken',
    ]
    recs = [(k, r) for line_no, line in enumerate(lines, 1) for k, r in readers.parse_json_line(line, "s", line_no)]
    tweets = {r["tweet_id"]: r for r in of_kind(recs, "tweet")}
    assert sorted(tweets) == ["11", "12", "13", "14"]
    assert (tweets["11"]["created_at"], tweets["11"]["user"], tweets["11"]["lang"]) == (
        dt.datetime(2022, 5, 1, 8, tzinfo=UTC), "ann", "en")
    assert tweets["12"]["created_at"] == tweets["13"]["created_at"] == dt.datetime(2022, 5, 1, 8, tzinfo=UTC)
    assert (tweets["12"]["user"], tweets["13"]["is_retweet"], tweets["12"]["is_retweet"]) == ("bob", True, False)
    assert (tweets["14"]["text"], tweets["14"]["lang"]) == ("v1.1 form", "es")
    assert [(r["line_no"], r["reason"]) for r in of_kind(recs, "reject")] == [
        (5, schema.MISSING_ID), (6, schema.BAD_TIMESTAMP), (7, schema.EMPTY_TEXT), (8, schema.UNKNOWN_RECORD),
        (9, schema.MALFORMED_JSON)]
    assert readers._object_time("Mon Apr 06 22:19:45 PDT 2009") == dt.datetime(2009, 4, 7, 5, 19, 45, tzinfo=UTC)


def test_other_tools_objects_with_fields_named_by_the_user(tmp_path):
    """Fields no name list knows are named as the jobs' --text-col ... name them, dotted paths into
    nested objects included; without the names the same file tells no format."""
    path = tmp_path / "export.jsonl"
    path.write_text('{"tid": "7", "posted": "2022-05-01T08:00:00Z", "body": {"msg": "hello"}, "who": "ann"}\n'
                    '{"tid": "8", "posted": "2022-05-01T09:00:00Z", "body": {"msg": null}, "who": "bob"}\n')
    named = (("id", "tid"), ("time", "posted"), ("text", "body.msg"), ("user", "who"))
    recs = [r for _, r in readers.read_numbered(str(path), columns=named)]
    assert [(k, r.get("tweet_id"), r.get("text"), r.get("user"), r.get("reason")) for k, r in recs] == [
        ("tweet", "7", "hello", "ann", None), ("reject", None, None, None, schema.EMPTY_TEXT)]
    assert {r["reason"] for _, r in records(path)} == {schema.UNKNOWN_RECORD}


def test_an_account_archive_tweets_js_gives_its_tweets(tmp_path):
    """An account's own archive (data/tweets.js of "Download an archive of your data"): the JSON
    assigned to window.YTD.tweets.part0, pretty-printed with " : " as the archive writes it, each
    tweet wrapped as {"tweet": {...}} with ids and counts as strings: its tweets, as the v1.1
    reader reads the same tweets, the user aside (the archive gives none per tweet)."""
    import json

    tweets = [o for o in _json_lines(V1_SAMPLE) if "delete" not in o and "retweeted_status" not in o]
    keep = ("id_str", "id", "created_at", "full_text", "lang", "truncated", "retweet_count", "favorite_count")
    wrapped = [{"tweet": {k: (str(v) if k in ("id", "retweet_count", "favorite_count") else v)
                          for k, v in dict(t, full_text=readers._v1_text(t)).items() if k in keep}} for t in tweets]
    path = tmp_path / "tweets.js"
    path.write_text("window.YTD.tweets.part0 = " + json.dumps(wrapped, indent=2, separators=(",", " : "),
                                                                ensure_ascii=False), encoding="utf-8")
    got = [dict(r, user=None, source_file=None) for k, r in records(path)]
    want = [dict(r, user=None, source_file=None) for r in of_kind(records(V1_SAMPLE), "tweet") if not r["is_retweet"]]
    assert got == want and len(got) == len(tweets) > 5
    assert readers.sniff(str(path))[1:] == (True, "twitter-v1")
    likes = tmp_path / "like.js"  # the archive's other files hold no tweets of the account: one reject each
    likes.write_text('window.YTD.like.part0 = [\n  {\n    "like" : {\n      "tweetId" : "1",\n      "fullText" : "x"\n'
                     '    }\n  }\n]')
    [(kind, rec)] = records(likes)
    assert rec["reason"] == schema.UNREADABLE_FILE and "window.YTD.like file" in rec["raw"]


def test_files_that_are_not_text_are_one_reject_each(tmp_path):
    """What a dataset download holds besides tweets (an image, a Parquet file without its name, a
    table saved by Excel as UTF-16): one unreadable_file reject each that says what it is, not a
    reject per "line" of its bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40)
    table = tmp_path / "tweets.data"
    pq.write_table(pa.table({"id": ["1"], "text": ["hi"]}), table)
    utf16 = tmp_path / "tweets.txt"
    utf16.write_bytes("id\ttext\n1\thello\n".encode("utf-16"))
    for path, says in ((image, "binary data"), (table, "Parquet"), (utf16, "UTF-16")):
        [(kind, rec)] = records(path)
        assert (kind, rec["reason"]) == ("reject", schema.UNREADABLE_FILE) and says in rec["raw"], path


def test_v2_compliance_events_are_delete_notices(tmp_path):
    """Tweets the API says are deleted must leave the output: a batch compliance job's lines (as in
    DocNow/twarc-csv test-data/tweets_compliance.jsonl) and a compliance stream's data.delete are
    delete notices, as v1.1's {"delete"} are; an action other than delete is a reject."""
    path = tmp_path / "tweets_compliance.jsonl"
    path.write_text(
        '\n{"id":"1170025343920402432","action":"delete","created_at":"2019-09-06T17:25:54.667Z","reason":"protected"}\n'
        '{"id":"1170147183095664640","action":"delete","created_at":"2019-09-07T01:30:03.390Z",'
        '"redacted_at":"2021-08-17T17:26:15.788Z","reason":"deactivated"}\n'
        '{"data":{"delete":{"tweet":{"id":"1404371697407463427","author_id":"1254"},"event_at":"2021-06-14T10:00:00.000Z"}}}\n'
        '{"id":"1170147183095664641","action":"scrub_geo","created_at":"2019-09-07T01:30:03.390Z"}\n')
    assert readers.detect_file_format(str(path)) == "twitter-v2"
    recs = records(path)
    assert [(k, r.get("tweet_id"), r.get("user_id"), r.get("deleted_at")) for k, r in recs[:3]] == [
        ("delete", "1170025343920402432", None, dt.datetime(2019, 9, 6, 17, 25, 54, 667000, tzinfo=UTC)),
        ("delete", "1170147183095664640", None, dt.datetime(2019, 9, 7, 1, 30, 3, 390000, tzinfo=UTC)),
        ("delete", "1404371697407463427", "1254", dt.datetime(2021, 6, 14, 10, tzinfo=UTC))]
    assert recs[3][0] == "reject" and recs[3][1]["reason"] == schema.UNKNOWN_RECORD and len(recs) == 4


def test_detect_format_first_lines():
    first = lambda p: p.read_text(encoding="utf-8").splitlines()[0]
    assert detect_format(str(V1_SAMPLE), first(V1_SAMPLE)) == "twitter-v1"  # a delete notice
    assert detect_format("x", '{"created_at": "Fri Jan 01 07:29:00 +0000 2021", "text": "a"}') \
        == "twitter-v1"
    assert detect_format("x", '{"limit": {"track": 1}}') == "twitter-v1"
    assert detect_format(str(V2_PAGE), first(V2_PAGE)) == "twitter-v2"
    assert detect_format(str(V2_FLAT), first(V2_FLAT)) == "twitter-v2"
    assert detect_format(str(V2_STREAM), first(V2_STREAM)) == "twitter-v2"
    assert detect_format("x", '{"id": "1", "text": "a", "edit_history_tweet_ids": ["1"]}') \
        == "twitter-v2"
    assert detect_format("x", '{"id": "1", "text": "a", "created_at": "2021-04-08T17:29:03.000Z"}') \
        == "twitter-v2"
    assert detect_format("x.csv", S140_GOOD) == "sentiment140"
    assert detect_format("x.csv", "\ufeff" + S140_GOOD) == "sentiment140"
    for bad in ("", "hello", "[1, 2]", '{"id": "1", "text": "a"}', '{"broken": ', '"a","b"'):
        with pytest.raises(ValueError, match="cannot detect the format of 'some/file'"):
            detect_format("some/file", bad)
    assert detect_format("x", '{"id": 1, "rawContent": "a", "date": "2021-04-08T17:29:03+00:00"}') == "json"
    assert set(FORMATS) == {"sentiment140", "twitter-v1", "twitter-v2", "json"}


def test_auto_detection_with_bom_and_blank_start(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf\n\n" + V1_SAMPLE.read_bytes())
    recs = records(path, source_file="s")
    assert kinds(recs) == {"tweet": 20, "delete": 8}


# ---------------------------------------------------------------------------------- listing

def test_list_input_files(tmp_path):
    root = tmp_path / "archive"
    for rel in ("2021/01/01/07/29.json.bz2", "2021/01/01/07/30.json.bz2", "2021/01/02/00/00.json",
                "2021/01/01/.07/x.json", "2021/_temporary/y.json", "2021/01/.part.crc",
                "2021/01/_SUCCESS", "a.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    got = list_input_files([str(root)])
    assert got == [str(root / r) for r in (
        "2021/01/01/07/29.json.bz2", "2021/01/01/07/30.json.bz2", "2021/01/02/00/00.json",
        "a.json")]
    # explicit files are kept (even hidden ones), order kept, duplicates dropped
    explicit = str(root / "2021/01/_SUCCESS")
    assert list_input_files([explicit, str(root / "a.json"), str(root)]) == (
        [explicit, str(root / "a.json")] + got[:3])
    assert list_input_files([root.as_uri()]) == got
    with pytest.raises(FileNotFoundError, match="input path does not exist: .*nope"):
        list_input_files([str(root), str(tmp_path / "nope")])


def test_a_directory_walk_skips_files_that_hold_no_tweets(tmp_path):
    """An Internet Archive item as `ia download` leaves it: the day tars beside the item's metadata
    (_files.xml, _meta.xml, _meta.sqlite, .torrent), and a README and checksums: each line of those
    would be a reject. Skipped in a walk, kept in ``skipped``; named on its own, a file is read."""
    item = tmp_path / "archiveteam-twitter-stream-2021-01"
    data = ["twitter-stream-2021-01-01.tar", "twitter-stream-2021-01-02.tar", "notes.txt", "readme_tweets.jsonl"]
    meta = ["archiveteam-twitter-stream-2021-01_files.xml", "archiveteam-twitter-stream-2021-01_meta.xml",
            "archiveteam-twitter-stream-2021-01_meta.sqlite", "archiveteam-twitter-stream-2021-01_archive.torrent",
            "README", "README.md", "SHA256SUMS", "license.txt", "cover.JPG"]
    item.mkdir()
    for name in data + meta:
        (item / name).write_text("x\n")
    got = list_input_files([str(item)])
    assert got == sorted(str(item / n) for n in data)
    assert sorted(got.skipped) == sorted(str(item / n) for n in meta)
    assert list_input_files([item.as_uri()]).skipped == got.skipped
    named = list_input_files([str(item / "README.md")])
    assert named == [str(item / "README.md")] and named.skipped == []


# ---------------------------------------------------------------------------------- real data

def test_real_v1_minute_file():
    if not REAL_V1.exists():
        pytest.skip("shared data not present")
    recs = list(read_file(str(REAL_V1)))
    assert kinds(recs) == {"tweet": 3173, "delete": 307}
    tweets = of_kind(recs, "tweet")
    assert sum(t["is_retweet"] for t in tweets) == 1709
    langs = Counter(t["lang"] for t in tweets)
    assert (langs["en"], langs["ja"], langs["th"], langs["und"], langs["ko"]) == (
        915, 634, 586, 245, 202)
    assert {t["dt"] for t in tweets} == {dt.date(2021, 1, 1)}
    assert min(t["created_at"] for t in tweets) == dt.datetime(2021, 1, 1, 7, 29, tzinfo=UTC)
    assert len({t["tweet_id"] for t in tweets}) == 3173
    # the fixture's lines come from this file and read the same
    real = {t["tweet_id"]: t for t in tweets}
    for tweet_id, t in by_id(records(V1_SAMPLE)).items():
        assert {**t, "source_file": None} == {**real[tweet_id], "source_file": None}


# counted independently with jq: `jq '.data | length'` per page (1 for a stream message),
# retweets = tweets with a referenced_tweets entry of type "retweeted"
REAL_V2_COUNTS = {
    "2sets.jsonl": (200, 145, {}),
    "brexit.jsonl": (100, 67, {}),
    "noflat.jsonl": (100, 47, {}),
    "flat.jsonl": (100, 47, {}),
    "withheld.jsonl": (215, 83, {}),
    "streaming_output_with_error.jsonl": (7, 0, {schema.MALFORMED_JSON: 1}),
}


@pytest.mark.parametrize("name", sorted(REAL_V2_COUNTS))
def test_real_v2_files(name):
    path = REAL_V2 / name
    if not path.exists():
        pytest.skip("shared data not present")
    n_tweets, n_retweets, reasons = REAL_V2_COUNTS[name]
    recs = list(read_file(str(path)))
    tweets = of_kind(recs, "tweet")
    assert len(tweets) == n_tweets
    assert sum(t["is_retweet"] for t in tweets) == n_retweets
    assert Counter(r["reason"] for r in of_kind(recs, "reject")) == reasons
    assert all(t["text"].strip() and t["created_at"].tzinfo is not None for t in tweets)


def test_real_v2_flat_equals_noflat():
    if not REAL_V2.exists():
        pytest.skip("shared data not present")
    strip = lambda p: {t["tweet_id"]: {k: v for k, v in t.items() if k != "source_file"}
                       for t in of_kind(list(read_file(str(p))), "tweet")}
    assert strip(REAL_V2 / "flat.jsonl") == strip(REAL_V2 / "noflat.jsonl")


def test_real_sentiment140_file():
    if not REAL_S140.exists():
        pytest.skip("shared data not present")
    n = 0
    for kind, rec in read_file(str(REAL_S140)):
        assert kind == "tweet"
        n += 1
    assert n == 44694


# ---------------------------------------------------------------------------- byte ranges

def _comparable(numbered):
    """(line, kind, record without the detection time) for comparing two reads of one file."""
    return [(n, k, {c: v for c, v in r.items() if c != "detected_at"}) for n, (k, r) in numbered]


def _read_in_ranges(path, fmt, cuts):
    """read_numbered over the ranges that ``cuts`` makes of the file, numbered as the Spark reader
    numbers them: from the newlines counted in the ranges before."""
    size = Path(path).stat().st_size
    bounds = [0, *cuts, size]
    out, newlines = [], 0
    for start, end in zip(bounds, bounds[1:]):
        out.extend(readers.read_numbered(str(path), fmt, byte_range=(start, end), newlines_before=newlines))
        newlines += readers.count_newlines(str(path), start, end)
    return out


@pytest.fixture
def mixed_v1_file(tmp_path):
    """Real v1.1 lines with the bad ones of the fixture, blank lines, CRLF ends, a line of invalid
    UTF-8 inside a tweet and no newline at the end: each kind of line a range can start or end in."""
    good = V1_SAMPLE.read_bytes().splitlines()[:12]
    bad = V1_BAD.read_bytes().splitlines()
    body = []
    for i, line in enumerate(good):
        body.append(line + (b"\r\n" if i % 3 == 0 else b"\n"))
        if i < len(bad):
            body.append(bad[i] + b"\n")
        if i % 4 == 1:
            body.append(b"\n   \n")
    body.append(good[0].replace(b'"text":"', b'"text":"\xff\xfe bad bytes ', 1))  # no final newline
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(body))
    return path


def test_byte_ranges_give_each_line_once_with_its_number(mixed_v1_file):
    whole = _comparable(readers.read_numbered(str(mixed_v1_file), "twitter-v1"))
    assert {k for _, k, _ in whole} == {"tweet", "delete", "reject"} and len(whole) > 20
    data = mixed_v1_file.read_bytes()
    size = len(data)
    # a cut at every byte near a line end (right after a newline, between \r and \n, in a blank
    # line) and at every 101st byte inside lines
    ends = [i for i, b in enumerate(data) if b == 0x0A]
    near_ends = {c for i in ends for c in range(i - 2, i + 3) if 0 < c < size}
    for cut in sorted(near_ends | set(range(1, size, 101))):
        assert _comparable(_read_in_ranges(mixed_v1_file, "twitter-v1", [cut])) == whole, cut
    step = size // 7
    assert _comparable(_read_in_ranges(mixed_v1_file, "twitter-v1", list(range(step, size, step)))) == whole
    # more ranges than lines: most are empty, none loses or repeats a line
    assert _comparable(_read_in_ranges(mixed_v1_file, "twitter-v1", list(range(50, size, 50)))) == whole


def test_byte_ranges_of_sentiment140_and_v2_pages(tmp_path):
    s140 = tmp_path / "s140.csv"
    s140.write_bytes(b'"0","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","a","sad, \xe2\x80\x9cquoted\xe2\x80\x9d"\n'
                     b'"4","2","Mon Apr 06 22:19:49 PDT 2009","NO_QUERY","b","happy \xf0\x9f\x98\x80"\n'
                     b'"4","3","short line"\n'
                     b'"0","4","Mon Apr 06 22:20:00 PDT 2009","NO_QUERY","c","ok \xc3"\n')
    for path, fmt in ((s140, "sentiment140"), (V2_PAGE, "twitter-v2")):
        whole = _comparable(readers.read_numbered(str(path), fmt))
        size = path.stat().st_size
        for cut in range(1, size, max(1, size // 97)):
            assert _comparable(_read_in_ranges(path, fmt, [cut])) == whole, (path.name, cut)


def test_byte_ranges_refuse_compressed_files_and_auto_format(tmp_path):
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(V1_SAMPLE.read_bytes()))
    assert readers.is_compressed(str(gz)) and not readers.is_compressed(str(V1_SAMPLE))
    with pytest.raises(ValueError, match="needs its format"):
        list(readers.read_numbered(str(V1_SAMPLE), "auto", byte_range=(0, 100)))
    kind, rec = list(readers.read_file(str(gz), "twitter-v1", byte_range=(0, 100)))[0]
    assert (kind, rec["reason"]) == ("reject", schema.UNREADABLE_FILE) and "compressed" in rec["raw"]
    assert readers.count_newlines(str(V1_SAMPLE), 0, V1_SAMPLE.stat().st_size) == \
        V1_SAMPLE.read_bytes().count(b"\n")


def test_detect_file_format(tmp_path):
    assert readers.detect_file_format(str(V1_SAMPLE)) == "twitter-v1"
    assert readers.detect_file_format(str(V2_PAGE)) == "twitter-v2"
    junk = tmp_path / "junk.txt"
    junk.write_text("not a tweet\n" * 3)
    assert readers.detect_file_format(str(junk)) is None
    assert readers.detect_file_format(str(tmp_path / "missing.jsonl")) is None


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_a_tar_read_whole_gives_its_members_records_as_one_stream(tmp_path, mode):
    """A tar read as one file (the jobs list the members of a plain tar, but a .tar.gz cannot be read
    where its members lie) gives each member's records as that file alone gives them, named
    "<tar>!/<member>", hidden members skipped; cut short, the records before the cut and one
    truncated_file reject. A tar inside a zip stays one reject that says to extract it."""
    import tarfile

    member = tmp_path / "29.json.bz2"
    member.write_bytes(bz2.compress(V1_SAMPLE.read_bytes()))
    path = tmp_path / f"day.{mode[2:] or 'plain'}.tar"
    with tarfile.open(path, mode) as tar:
        tar.add(member, arcname="2021/01/01/07/29.json.bz2")
        tar.add(V1_BAD, arcname="2021/01/01/07/30.jsonl")
        tar.add(V1_BAD, arcname="2021/01/01/07/._30.jsonl")  # hidden: skipped
    got = [(k, r) for k, r in records(path)]
    want = records(member, source_file=f"{path}!/2021/01/01/07/29.json.bz2") + \
        records(V1_BAD, source_file=f"{path}!/2021/01/01/07/30.jsonl")
    strip = lambda rs: [(k, {f: v for f, v in r.items() if f != "detected_at"}) for k, r in rs]
    assert strip(got) == strip(want) and len(got) > 40

    if mode != "w":  # 6 minutes (bzip2 of shuffled lines: the tar's compression cannot shrink them), cut in 4
        import random

        many = tmp_path / f"many.{mode[2:]}.tar"
        lines = V1_SAMPLE.read_bytes().splitlines(keepends=True)
        with tarfile.open(many, mode) as tar:
            for minute in range(6):
                random.Random(minute).shuffle(lines)
                data = bz2.compress(b"".join(lines))
                info = tarfile.TarInfo(f"2021/01/01/07/{minute:02d}.json.bz2")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        data = many.read_bytes()
        cut = tmp_path / "cut.tar"
        cut.write_bytes(data[: len(data) * 2 // 3])
        recs = records(cut)
        assert recs[-1][1]["reason"] == schema.TRUNCATED_FILE and "breaks off" in recs[-1][1]["raw"]
        # a bzip2 block holds 900 kB, here the whole tar: nothing of it decodes before the cut
        assert (0 if mode == "w:bz2" else 3 * 20) <= len(of_kind(recs, "tweet")) < 6 * 20

    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as z:
        z.write(path, "day.tar")
    [(_, (kind, rec))] = list(readers.read_numbered(str(nested), member=readers.archive_members(str(nested))[0]))
    assert (kind, rec["reason"]) == ("reject", schema.UNREADABLE_FILE) and "tar -xf" in rec["raw"]


def _sample_zip(path, tmp_path):
    """A zip as a dataset download comes: a deflated member, a stored bzip2 member in a folder, a
    macOS resource fork (hidden) and a directory entry."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(V1_SAMPLE, "v1_sample.jsonl")
        z.writestr(zipfile.ZipInfo("minutes/"), b"")
        z.writestr("minutes/29.json.bz2", bz2.compress(V1_SAMPLE.read_bytes()), compress_type=zipfile.ZIP_STORED)
        z.writestr("__MACOSX/._v1_sample.jsonl", b"\x00\x05\x16\x07 resource fork")
    return path


def test_zip_members_are_read_as_files_of_their_own(tmp_path):
    path = _sample_zip(tmp_path / "download.zip", tmp_path)
    members = readers.archive_members(str(path))
    assert [(m[0], m[1]) for m in members] == [("minutes/29.json.bz2", readers.ZIP_MEMBER),
                                              ("v1_sample.jsonl", readers.ZIP_MEMBER)]
    assert readers.is_compressed(str(path)) and readers.is_zip(str(path)) and not readers.is_plain_tar(str(path))
    for m in members:
        got = list(readers.read_numbered(str(path), "auto", member=m))
        assert {r["source_file"] for _, (_, r) in got} == {f"{path}!/{m[0]}"}
        assert _comparable(got) == _comparable(readers.read_numbered(str(V1_SAMPLE), "auto", f"{path}!/{m[0]}"))


@pytest.mark.parametrize("head,kind,advice", [
    (b"PK\x03\x04", "zip archive", "unzip"),  # a zip read whole (inside a tar, or damaged)
    (b"7z\xbc\xaf\x27\x1c\x00\x04", "7-Zip archive", "7z x"),
    (b"Rar!\x1a\x07\x00", "RAR archive", "unrar x"),
    (b"\x04\x22\x4d\x18\x64\x40", "lz4", "zstd -o"),
])
def test_an_archive_or_compression_the_jobs_do_not_read_is_one_clear_reject(tmp_path, head, kind, advice):
    path = tmp_path / "dump.bin"
    path.write_bytes(head + bytes(range(256)) * 64)
    [(k, rec)] = records(path)
    assert (k, rec["reason"], rec["line_no"]) == ("reject", schema.UNREADABLE_FILE, None)
    assert kind in rec["raw"] and advice in rec["raw"] and str(path) in rec["raw"]


def _json_lines(path):
    import json

    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _without_lines(recs):
    """Records without where they lie; a reject's raw text as the JSON it holds (a value of a
    document keeps its own layout, a pretty-printed one its newlines)."""
    def raw(v):
        return _loads_or_none(v) if _loads_or_none(v) is not None else v

    return [(k, {c: raw(v) if c == "raw" else v for c, v in r.items() if c not in ("detected_at", "line_no", "source_file")})
            for k, r in recs]


@pytest.mark.parametrize("indent", [None, 1])
def test_a_json_array_of_tweets_reads_as_json_lines_do(tmp_path, indent):
    """Scrapers and notebooks dump tweets as one JSON array, on one line or pretty-printed: the
    same records as the JSON Lines of the same objects, deletes and rejects included."""
    import json

    for src in (V1_SAMPLE, V1_BAD, V2_FLAT):
        objs = [json.loads(line) for line in src.read_text().splitlines() if line.strip() and line.startswith("{")
                and _loads_or_none(line) is not None]
        lines, doc = tmp_path / f"{src.stem}.jsonl", tmp_path / f"{src.stem}.json"
        lines.write_text("".join(json.dumps(o) + "\n" for o in objs))
        doc.write_text(json.dumps(objs, indent=indent))
        assert _without_lines(records(doc)) == _without_lines(records(lines)) and objs
        assert readers.detect_file_format(str(doc)) == readers.detect_file_format(str(lines))
        assert readers.sniff(str(doc))[1] and not readers.sniff(str(lines))[1]


def test_a_json_array_on_one_long_line_streams_in_pieces(tmp_path, monkeypatch):
    """A JSON array dumped without newlines is one line as long as the file: it is read in pieces
    (readers._PIECE, made small here), cut between UTF-8 sequences, in memory that does not grow
    with the file; a long line of JSON Lines is joined again, so its records are those of the line
    read whole."""
    import json
    import tracemalloc

    objs = [o for o in _json_lines(V1_SAMPLE) if "delete" not in o]
    for o in objs:
        o["text"] = "d\u00e9j\u00e0 vu \U0001F600 " + o["text"]  # multi-byte UTF-8 in every piece
    monkeypatch.setattr(readers, "_PIECE", 1 << 14)
    monkeypatch.setattr(readers, "_CHUNK", 1 << 12)
    peaks = []
    for copies in (10, 40):
        tweets = [dict(o, id_str=f"{o['id_str']}{i}") for i in range(copies) for o in objs]
        doc, lines = tmp_path / f"one_line_{copies}.json", tmp_path / f"tweets_{copies}.jsonl"
        doc.write_text(json.dumps(tweets, ensure_ascii=False), encoding="utf-8")
        lines.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in tweets), encoding="utf-8")
        tracemalloc.start()
        try:
            n = sum(1 for _ in readers.read_file(str(doc)))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert n == len(tweets) and doc.stat().st_size > 40 * (1 << 14)
        assert _without_lines(records(doc)) == _without_lines(records(lines))
        assert readers.sniff(str(doc))[1:] == (True, "twitter-v1")
    assert peaks[1] < 1.3 * peaks[0], peaks  # 4 times the file, not 4 times the memory

    page = {"data": [dict(id=str(i), text="caf\u00e9 " * 40, created_at="2021-01-01T00:00:00.000Z",
                          author_id="1") for i in range(2000)]}
    big = tmp_path / "page.jsonl"  # one response page as one JSON Lines line over 2 pieces, then one more line
    big.write_text(json.dumps(page, ensure_ascii=False) + "\n" + json.dumps({"data": page["data"][:1]}) + "\n")
    recs = records(big)
    assert len(of_kind(recs, "tweet")) == len(recs) == 2001


def _loads_or_none(line):
    import json

    try:
        return json.loads(line)
    except ValueError:
        return None


def test_pretty_printed_api_responses_read_as_their_compact_lines(tmp_path):
    """A v2 response page saved with json.dump(indent=2), and v1.1 search responses
    ({"statuses": [...]}) pretty-printed one after another: each value as its one-line form."""
    import json

    pages = _json_lines(V2_PAGE)
    pretty, compact = tmp_path / "pages.json", tmp_path / "pages.jsonl"
    pretty.write_text("\n".join(json.dumps(p, indent=2) for p in pages))
    compact.write_text("".join(json.dumps(p) + "\n" for p in pages))
    got = records(pretty)
    assert _without_lines(got) == _without_lines(records(compact)) and of_kind(got, "tweet")
    # each record's line is where its value starts
    first_lines = [i + 1 for i, line in enumerate(pretty.read_text().splitlines()) if line == "{"]
    assert sorted({r["line_no"] for k, r in got if k == "reject"} - set(first_lines)) == []

    statuses = [o for o in _json_lines(V1_SAMPLE) if "delete" not in o]
    search = [{"statuses": statuses[:3], "search_metadata": {"count": 3}},
              {"statuses": [], "search_metadata": {"count": 0}},
              {"statuses": statuses[3:], "search_metadata": {"count": len(statuses) - 3}}]
    for path, text in ((tmp_path / "search.jsonl", "".join(json.dumps(r) + "\n" for r in search)),
                       (tmp_path / "search.json", "\n".join(json.dumps(r, indent=4) for r in search))):
        path.write_text(text)
        recs = records(path)
        assert [r["tweet_id"] for r in of_kind(recs, "tweet")] == [o["id_str"] for o in statuses]
        # the empty page is counted, not dropped
        assert [r["reason"] for r in of_kind(recs, "reject")] == [schema.UNKNOWN_RECORD]


def test_a_broken_value_in_a_json_document_is_rejected_and_the_rest_read(tmp_path):
    import json

    tweets = [o for o in _json_lines(V1_SAMPLE) if "delete" not in o][:4]
    text = json.dumps(tweets, indent=2).splitlines()
    # break the second tweet: a line of it loses its closing quote and comma
    second = [i for i, line in enumerate(text) if line == "  {"][1]
    text[second + 1] = text[second + 1].replace('",', "")  # "created_at": "Fri Jan 01 ... 2021
    path = tmp_path / "broken.json"
    path.write_text("\n".join(text) + "\n")
    recs = records(path)
    assert [r["tweet_id"] for r in of_kind(recs, "tweet")] == [tweets[0]["id_str"]] + [t["id_str"] for t in tweets[2:]]
    rejects = of_kind(recs, "reject")
    assert rejects and rejects[0]["reason"] == schema.MALFORMED_JSON and rejects[0]["line_no"] == second + 1
    assert all(r["reason"] in (schema.MALFORMED_JSON, schema.UNKNOWN_RECORD) for r in rejects)
    # a document cut short (a truncated download): the values before the cut, then the cut
    cut = tmp_path / "cut.json.gz"
    whole = json.dumps(tweets, indent=2).encode()
    cut.write_bytes(gzip.compress(whole)[: len(gzip.compress(whole)) * 2 // 3])
    recs = records(cut)
    assert 0 < len(of_kind(recs, "tweet")) < 4 and recs[-1][1]["reason"] == schema.TRUNCATED_FILE


def _bz2_levels(data: bytes) -> bytes:
    """bzip2 of ``data`` as pbzip2 and bzip2 -1 write it: two streams (level 1: 100 kB blocks, so
    many blocks), the second starting mid-line."""
    half = len(data) // 2
    return bz2.compress(data[:half], 1) + bz2.compress(data[half:], 1)


def test_bzip2_block_ranges_tile_the_file(tmp_path):
    """A large .bz2 file is cut into byte ranges read on their own from the first block whose magic
    lies in each: whatever the cuts (inside blocks, between streams, ranges with no block at all),
    the ranges give every line once, in order; the first range's lines keep their numbers, the
    others' are in order behind UNNUMBERED and their rejects carry none."""
    data = (V1_SAMPLE.read_bytes() + V1_BAD.read_bytes()) * 12
    path = tmp_path / "big.jsonl.bz2"
    path.write_bytes(_bz2_levels(data))
    assert readers.is_bzip2(str(path)) and not readers.is_bzip2(str(V1_SAMPLE))
    size = path.stat().st_size
    whole = [line for _, line in readers.open_lines(str(path))]
    assert len(whole) == data.count(b"\n") and len(readers._bit_find(path.read_bytes(), readers._BZ2_BLOCK)) > 8
    for k in (1, 2, 3, 7, 40):
        bounds = [size * i // k for i in range(k + 1)]
        got, numbers = [], []
        for i, (start, end) in enumerate(zip(bounds, bounds[1:])):
            numbered = list(readers.open_lines(str(path), (start, end), i * readers.UNNUMBERED))
            got += [line for _, line in numbered]
            numbers += [n for n, _ in numbered]
        assert got == whole, k
        assert numbers == sorted(numbers) and numbers[:5] == [1, 2, 3, 4, 5]
    # records: as the whole file gives them, but for the rejects' line numbers after the first range
    bounds = [0, size // 3, size * 2 // 3, size]
    recs = [rec for i, (start, end) in enumerate(zip(bounds, bounds[1:]))
            for _, rec in readers.read_numbered(str(path), "twitter-v1", None, (start, end), i * readers.UNNUMBERED)]
    plain = records(path)
    assert _without_lines(recs) == _without_lines(plain)
    line_nos = [r["line_no"] for k, r in recs if k == "reject"]
    assert line_nos[:3] == [r["line_no"] for k, r in plain if k == "reject"][:3] and None in line_nos


def test_a_cut_bzip2_file_read_by_ranges_ends_in_a_truncated_file_reject(tmp_path):
    data = _bz2_levels((V1_SAMPLE.read_bytes()) * 30)
    path = tmp_path / "cut.jsonl.bz2"
    path.write_bytes(data[: len(data) * 3 // 4])
    size = path.stat().st_size
    bounds = [0, size // 2, size]
    recs = [rec for i, (start, end) in enumerate(zip(bounds, bounds[1:]))
            for _, rec in readers.read_numbered(str(path), "twitter-v1", None, (start, end), i * readers.UNNUMBERED)]
    assert recs[-1][1]["reason"] == schema.TRUNCATED_FILE and recs[-1][1]["line_no"] is None
    assert [r for k, r in recs[:-1] if k == "reject"] == []
    whole = records(path)
    assert _without_lines(recs[:-1]) == _without_lines(whole[:-1]) and whole[-1][1]["reason"] == schema.TRUNCATED_FILE


def test_ranges_and_tar_members_through_pyarrow_filesystems(monkeypatch, mixed_v1_file, tmp_path):
    """Behind a URI (hdfs://, s3://) files open through pyarrow.fs: seekable NativeFiles there. Read
    file:// URIs that way (as any other scheme would be) and get what the local path gives."""
    import tarfile

    member = tmp_path / "29.json.bz2"
    member.write_bytes(bz2.compress(V1_SAMPLE.read_bytes()))
    tar_path = tmp_path / "day.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(member, arcname="2021/01/01/07/29.json.bz2")
        tar.add(mixed_v1_file, arcname="2021/01/01/07/30.jsonl")
    local = {
        "ranges": _comparable(_read_in_ranges(mixed_v1_file, "twitter-v1", [997, 5003, 20011])),
        "members": [_comparable(readers.read_numbered(str(tar_path), "auto", member=m))
                    for m in readers.tar_members(str(tar_path))],
    }
    assert len(local["members"]) == 2 and all(local["members"])
    monkeypatch.setattr(readers, "_local_path", lambda path: None)  # every path through pyarrow.fs
    uri, tar_uri = mixed_v1_file.as_uri(), tar_path.as_uri()
    assert readers.file_size(uri) == mixed_v1_file.stat().st_size and not readers.is_compressed(uri)
    size = mixed_v1_file.stat().st_size
    remote_ranges, newlines = [], 0
    for start, end in zip([0, 997, 5003, 20011], [997, 5003, 20011, size]):
        remote_ranges.extend(readers.read_numbered(uri, "twitter-v1", str(mixed_v1_file), (start, end), newlines))
        newlines += readers.count_newlines(uri, start, end)
    assert _comparable(remote_ranges) == local["ranges"]
    members = readers.tar_members(tar_uri)
    assert readers.is_plain_tar(tar_uri) and [m[0] for m in members] == ["2021/01/01/07/29.json.bz2", "2021/01/01/07/30.jsonl"]
    assert [_comparable(readers.read_numbered(tar_uri, "auto", str(tar_path), member=m)) for m in members] == local["members"]
    zip_path = _sample_zip(tmp_path / "download.zip", tmp_path)
    zip_local = [_comparable(readers.read_numbered(str(zip_path), "auto", "z", member=m))
                 for m in readers.archive_members(str(zip_path))]
    zip_uri = zip_path.as_uri()
    assert [_comparable(readers.read_numbered(zip_uri, "auto", "z", member=m))
            for m in readers.archive_members(zip_uri)] == zip_local and all(zip_local)


def test_a_uri_listing_keeps_its_sizes_and_the_read_asks_none_again(spark, monkeypatch, tmp_path):
    """Behind an object store every size asked is a request: list_input_files keeps what its
    listing gave (readers.Listed), hands its own result back unchanged, and read_records plans the
    parse from those sizes without asking any file again."""
    from sentiment_core.spark import read_records

    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_bytes(V1_SAMPLE.read_bytes())
    (d / "b.jsonl.bz2").write_bytes(bz2.compress(V1_SAMPLE.read_bytes()))
    monkeypatch.setattr(readers, "_local_path", lambda p: None)  # the driver lists through pyarrow.fs
    files = list_input_files([d.as_uri()])
    assert isinstance(files, readers.Listed) and list_input_files(files) is files
    assert files.sizes == {(d / n).as_uri(): (d / n).stat().st_size for n in ("a.jsonl", "b.jsonl.bz2")}

    def no_request(path):
        raise AssertionError(f"size of {path} asked again")

    monkeypatch.setattr(readers, "file_size", no_request)
    plan: dict = {}
    got = read_records(spark, files, plan=plan).groupBy("kind").count().collect()
    assert plan["files"] == 2 and sum(r["count"] for r in got) == 2 * len(records(V1_SAMPLE, source_file="s"))


def test_sentiment140_joining_is_bounded_by_lines_and_characters():
    """A record that never closes stops joining after MAX_RECORD_LINES lines or MAX_RECORD_CHARS
    characters (the pieces of a line too long to read whole share its number): what was joined is
    one reject-to-be, and the lines after it pass through as they are."""
    from sentiment_core import sentiment140 as s140

    start = '"0","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","u","open'
    many = [(1, start)] + [(n, f"line {n}") for n in range(2, s140.MAX_RECORD_LINES + 5)]
    out = list(s140.records(many))
    assert out[0][0] == 1 and out[0][1].count("\n") == s140.MAX_RECORD_LINES - 1
    assert out[1:] == many[s140.MAX_RECORD_LINES:]
    piece = "x" * 10_000
    pieces = [(7, start)] + [(7, piece)] * 20  # one long line in pieces
    out = list(s140.records(pieces))
    assert len(out[0][1]) <= s140.MAX_RECORD_CHARS and "\n" not in out[0][1]
    assert sum(len(t) for _, t in out) == len(start) + 20 * len(piece)  # nothing lost, nothing doubled
