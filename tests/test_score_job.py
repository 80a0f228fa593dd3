"""The Spark scoring job (jobs/score.py + sentiment_core.spark), run in-process on the shared
local[2] session. Expected values are worked out here from the fixture files with json/bz2,
never by calling the code under test."""
from __future__ import annotations

import bz2
import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from jobs import score as job
from tests.conftest import FIXTURES

ARCH = FIXTURES / "archives"
V1_SAMPLE = ARCH / "v1_sample.jsonl"
V1_BAD = ARCH / "v1_bad.jsonl"
V2_PAGE = ARCH / "v2_page.jsonl"
UTC = dt.timezone.utc

# v1_bad.jsonl, worked out by hand from the file (line numbers are 1-based; line 6 is blank)
V1_BAD_REJECTS = [
    (1, "malformed_json"), (2, "missing_id"), (3, "bad_timestamp"), (4, "empty_text"),
    (5, "unknown_record"), (7, "unknown_record"), (9, "empty_text"), (11, "missing_id"),
    (12, "unknown_record"), (13, "bad_timestamp"),
]
V1_BAD_TWEETS = {"908": None, "914": None}  # id -> lang (908: lang null, 914: no lang key)
V1_BAD_DELETES = ["910"]
V1_BAD_TIMES = {"908": dt.datetime(2021, 1, 1, 7, 29, tzinfo=UTC),  # 09:29 +0200
                "914": dt.datetime(2021, 1, 1, 7, 29, tzinfo=UTC)}


# ---------------------------------------------------------------------------------------------
# expected values from the raw fixture files


def v1_expected(lines: list[bytes]) -> tuple[list[dict], list[str]]:
    """(tweets, delete ids) of v1 lines that are all valid tweets or delete notices (v1_sample)."""
    tweets, deletes = [], []
    for line in lines:
        obj = json.loads(line)
        if "delete" in obj:
            deletes.append(obj["delete"]["status"]["id_str"])
        else:
            created = dt.datetime.strptime(obj["created_at"], "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)
            tweets.append({"tweet_id": obj["id_str"], "lang": obj.get("lang"), "created_at": created})
    return tweets, deletes


def v2_page_expected(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        for item in json.loads(line)["data"]:
            created = dt.datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).astimezone(UTC)
            out.append({"tweet_id": item["id"], "lang": item.get("lang"), "created_at": created})
    return out


def multistream_bz2(lines: list[bytes], per_stream: int = 4) -> list[bytes]:
    return [bz2.compress(b"".join(lines[i:i + per_stream])) for i in range(0, len(lines), per_stream)]


def read_table(spark, path: Path) -> pd.DataFrame:
    return spark.read.parquet(str(path)).toPandas()


def epoch(ts: dt.datetime) -> int:
    return int(ts.timestamp())


# ---------------------------------------------------------------------------------------------
# 1. readers in Spark


def test_read_records_counts_and_canonical_types(spark, tmp_path):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from sentiment_core.spark import read_records

    # a tweet whose local date differs from its UTC date: dt must come from UTC
    midnight = tmp_path / "midnight.jsonl"
    midnight.write_text(json.dumps({"created_at": "Fri Jan 01 01:30:00 +0200 2021", "id_str": "77",
                                    "text": "new year", "user": {"screen_name": "z"}, "lang": "en"}) + "\n")
    files = [str(V1_SAMPLE), str(V1_BAD), str(V2_PAGE), str(midnight)]
    records = read_records(spark, files, files_per_task=2)

    fields = {f.name: f.dataType for f in records.schema.fields}
    for name in ("tweet_id", "user", "lang", "text", "source_file", "kind", "reason", "raw"):
        assert isinstance(fields[name], T.StringType), name
    assert isinstance(fields["created_at"], T.TimestampType)
    assert isinstance(fields["dt"], T.DateType)
    assert isinstance(fields["is_retweet"], T.BooleanType)
    assert isinstance(fields["line_no"], T.LongType)

    rows = (records.select("kind", "tweet_id", "lang", "source_file", "line_no", "reason", "raw",
                           F.col("created_at").cast("long").alias("epoch"),
                           F.date_format("dt", "yyyy-MM-dd").alias("dt_s"),
                           F.date_format("created_at", "yyyy-MM-dd HH:mm:ss").alias("utc_s"))
            .toPandas())

    s_tweets, s_deletes = v1_expected(V1_SAMPLE.read_bytes().splitlines())
    page = v2_page_expected(V2_PAGE)
    assert (len(s_tweets), len(s_deletes), len(page)) == (20, 8, 7)  # the fixture README's numbers

    # exact counts per kind and per reason
    assert Counter(rows["kind"]) == {"tweet": len(s_tweets) + len(V1_BAD_TWEETS) + len(page) + 1,
                                     "delete": len(s_deletes) + len(V1_BAD_DELETES),
                                     "reject": len(V1_BAD_REJECTS)}
    rej = rows[rows["kind"] == "reject"]
    assert Counter(rej["reason"]) == Counter(r for _, r in V1_BAD_REJECTS)
    assert sorted(zip(rej["line_no"].astype(int), rej["reason"])) == V1_BAD_REJECTS
    assert set(rej["source_file"]) == {str(V1_BAD)}
    bad_lines = V1_BAD.read_text().split("\n")
    for line_no, raw in zip(rej["line_no"], rej["raw"]):
        assert raw == bad_lines[int(line_no) - 1]
    dels = rows[rows["kind"] == "delete"]
    assert sorted(dels["tweet_id"]) == sorted(s_deletes + V1_BAD_DELETES)

    # tweets: ids, UTC instants and UTC dates per source
    tw = rows[rows["kind"] == "tweet"].set_index("tweet_id")
    expected = {t["tweet_id"]: (t["created_at"], t["lang"], str(V1_SAMPLE)) for t in s_tweets}
    expected.update({t["tweet_id"]: (t["created_at"], t["lang"], str(V2_PAGE)) for t in page})
    expected.update({i: (V1_BAD_TIMES[i], lang, str(V1_BAD)) for i, lang in V1_BAD_TWEETS.items()})
    expected["77"] = (dt.datetime(2020, 12, 31, 23, 30, tzinfo=UTC), "en", str(midnight))
    assert set(tw.index) == set(expected) and len(tw) == len(expected)
    for tid, (created, lang, src) in expected.items():
        row = tw.loc[tid]
        assert row["epoch"] == epoch(created), tid
        assert row["utc_s"] == created.strftime("%Y-%m-%d %H:%M:%S"), tid
        assert row["dt_s"] == created.date().isoformat(), tid
        assert (None if pd.isna(row["lang"]) else row["lang"]) == lang, tid
        assert row["source_file"] == src, tid
    assert tw.loc["77", "dt_s"] == "2020-12-31"


def test_a_lone_surrogate_escape_is_read_not_a_failed_task(spark, tmp_path):
    """A text cut inside an emoji (``"\\ud83d"`` with no second half, in the JSON as an escape):
    Arrow cannot encode it, so a task that passed it on failed, and the job with it. It is read
    with U+FFFD in its place, in v1.1 and in v2."""
    from sentiment_core.spark import read_records

    v1 = tmp_path / "cut.jsonl"
    v1.write_text('{"id_str": "1", "created_at": "Fri Jan 01 07:29:00 +0000 2021", "user": {"screen_name": "u"}, '
                  '"text": "so happy \\ud83d"}\n')
    v2 = tmp_path / "cut_v2.jsonl"
    v2.write_text('{"id": "2", "created_at": "2021-01-01T07:29:00.000Z", "author_id": "9", '
                  '"text": "\\ude00 and \\ud83d\\ude00"}\n')
    rows = read_records(spark, [str(v1), str(v2)]).select("kind", "tweet_id", "text").toPandas()
    assert sorted(map(tuple, rows.values.tolist())) == [
        ("tweet", "1", "so happy \ufffd"), ("tweet", "2", "\ufffd and \U0001f600")]


def test_read_records_splits_large_plain_files(spark, tmp_path):
    """A plain file over the range size is parsed by several tasks, one byte range each, and gives
    the same records, line numbers included, as one task reading it whole; a gzip file of the same
    lines stays one task (it cannot be cut)."""
    import gzip

    from sentiment_core.spark import SPLIT_FILES_CONF, plan_parse, read_records

    lines = (V1_SAMPLE.read_bytes() + V1_BAD.read_bytes()) * 3
    plain, packed = tmp_path / "big.jsonl", tmp_path / "big.jsonl.gz"
    plain.write_bytes(lines)
    packed.write_bytes(gzip.compress(lines))
    files = [str(plain), str(packed)]
    cols = ["kind", "tweet_id", "line_no", "reason", "raw", "text", "source_file", "created_at"]

    def read(split: bool):
        spark.conf.set(SPLIT_FILES_CONF, str(split).lower())
        df = read_records(spark, files)
        return df.rdd.getNumPartitions(), sorted(df.select(*cols).collect(), key=lambda r: tuple(map(str, r)))

    spark.conf.set("spark.sql.files.maxPartitionBytes", "32k")
    spark.conf.set("spark.sql.files.openCostInBytes", "8k")
    try:
        tasks, stats = plan_parse(spark, files, "auto", 4)
        assert stats["range_bytes"] == 32 * 1024 and stats["split_files"] == 1
        assert stats["ranges"] == -(-len(lines) // (32 * 1024)) == len(tasks) - 1
        assert tasks[-1] == [(str(packed), "auto", None, 0, None)]
        gone = str(tmp_path / "gone.jsonl")  # listed, then removed: read whole, so it becomes a reject
        assert plan_parse(spark, [gone], "auto", 4)[0] == [[(gone, "auto", None, 0, None)]]
        # a JSON document (an array of tweets, pretty-printed) is not lines of records: never cut
        doc = tmp_path / "big.json"
        objs = [json.loads(line) for line in V1_SAMPLE.read_text().splitlines() if line.strip()] * 3
        doc.write_text(json.dumps(objs, indent=2))
        assert doc.stat().st_size > 3 * 32 * 1024
        assert plan_parse(spark, [str(doc)], "auto", 4) == ([[(str(doc), "auto", None, 0, None)]], {
            "files": 1, "split_files": 0, "split_bzip2_files": 0, "ranges": 0, "range_bytes": 32 * 1024, "tasks": 1,
            "tar_files": 0, "tar_members": 0, "zip_files": 0, "zip_members": 0})
        n_split, split_rows = read(True)
        n_whole, whole_rows = read(False)
    finally:
        for key in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes", SPLIT_FILES_CONF):
            spark.conf.unset(key)
    assert (n_split, n_whole) == (len(tasks), 2)
    assert split_rows == whole_rows
    # the rejects' line numbers are the file's own: V1_BAD's lines after each copy of the sample
    n_sample, n_bad = len(V1_SAMPLE.read_bytes().splitlines()), len(V1_BAD.read_bytes().splitlines())
    got = sorted((r["line_no"], r["reason"]) for r in split_rows if r["kind"] == "reject" and r["source_file"] == str(plain))
    assert got == sorted((copy * (n_sample + n_bad) + n_sample + n, reason)
                         for copy in range(3) for n, reason in V1_BAD_REJECTS)


def test_read_records_cuts_a_large_bzip2_file_at_its_blocks(spark, tmp_path):
    """A .bz2 file over the range size is parsed by several tasks, each from the first block in its
    byte range: the same records as one task reading it whole, but for the line numbers after the
    first range (rejects there carry none); the dedup of the scoring job keeps its order."""
    from sentiment_core import readers
    from sentiment_core.spark import SPLIT_FILES_CONF, plan_parse, read_records

    data = (V1_SAMPLE.read_bytes() + V1_BAD.read_bytes()) * 8
    path = tmp_path / "big.jsonl.bz2"
    path.write_bytes(bz2.compress(data, 1))  # 100 kB blocks
    cols = ["kind", "tweet_id", "reason", "raw", "text", "source_file", "created_at", "dt"]

    threads = {}

    def read(split: bool):
        spark.conf.set(SPLIT_FILES_CONF, str(split).lower())
        plan: dict = {}
        df = read_records(spark, [str(path)], plan=plan)
        threads[split] = plan["decode_threads"]
        rows = df.select(*cols, "line_no").collect()
        return df.rdd.getNumPartitions(), sorted((tuple(r[:-1]) for r in rows), key=lambda r: tuple(map(str, r))), rows

    spark.conf.set("spark.sql.files.maxPartitionBytes", "16k")
    spark.conf.set("spark.sql.files.openCostInBytes", "4k")
    try:
        tasks, stats = plan_parse(spark, [str(path)], "auto", 4)
        assert stats["split_bzip2_files"] == 1 and stats["ranges"] == len(tasks) > 2
        assert [t[0][3] for t in tasks] == [i * readers.UNNUMBERED for i in range(len(tasks))]
        n_split, split_rows, raw_split = read(True)
        n_whole, whole_rows, raw_whole = read(False)
    finally:
        for key in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes", SPLIT_FILES_CONF):
            spark.conf.unset(key)
    assert (n_split, n_whole) == (len(tasks), 1)
    assert split_rows == whole_rows and len(split_rows) > 200
    # read whole, the file's one task decodes its blocks in two threads (local[2] has a slot to
    # spare); cut into ranges, every slot has a task and each decodes in one
    assert threads == {True: 1, False: 2}
    # tweets keep the file's order in their order keys
    order = [r["tweet_id"] for r in sorted(raw_split, key=lambda r: r["line_no"] or 0) if r["kind"] == "tweet"]
    assert order == [r["tweet_id"] for r in sorted(raw_whole, key=lambda r: r["line_no"] or 0) if r["kind"] == "tweet"]
    assert None in [r["line_no"] for r in raw_split if r["kind"] == "reject"]


def _member_rows(spark, paths, strip: str) -> list[tuple]:
    """read_records' rows of ``paths``, sorted, with ``strip`` taken out of their source_file: an
    archive's "<archive>!/" or an extracted directory's "<dir>/", to compare the two."""
    from sentiment_core.spark import read_records

    cols = ["kind", "tweet_id", "line_no", "reason", "raw", "text", "created_at", "source_file"]
    got = read_records(spark, [str(p) for p in paths]).select(*cols).collect()
    return sorted((tuple(r[:-1]) + (r["source_file"].replace(strip, ""),) for r in got), key=str)


def test_read_records_reads_the_members_of_a_tar(spark, tmp_path):
    """A day of the Internet Archive grab as it is downloaded, a tar of minute files, gives the
    records of its members, each a file of its own ("<tar>!/<member>"), as the extracted directory
    does; hidden members (macOS '._' files) are skipped as in a directory; the counts see one input
    file. A gzip-compressed tar gives the same records, read as one stream."""
    import gzip
    import tarfile

    from sentiment_core.spark import read_records

    day = tmp_path / "extracted"
    minute = day / "2021" / "01" / "01" / "07"
    minute.mkdir(parents=True)
    (minute / "29.json.bz2").write_bytes(bz2.compress(V1_SAMPLE.read_bytes()))
    (minute / "30.jsonl").write_bytes(V1_BAD.read_bytes())
    tar_path = tmp_path / "twitter-stream-2021-01-01.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(day / "2021", arcname="2021")  # directory entries, then the files
        tar.addfile(tarfile.TarInfo("2021/01/01/07/._29.json.bz2"), None)  # hidden: skipped
    from_tar = _member_rows(spark, [tar_path], f"{tar_path}!/")
    assert from_tar == _member_rows(spark, [day], f"{day}/")
    assert {r[-1] for r in from_tar} == {"2021/01/01/07/29.json.bz2", "2021/01/01/07/30.jsonl"}
    records = read_records(spark, [str(tar_path)])
    assert job.count_files(records) == 1 and job.count_records(records, ())["rejected"] == len(V1_BAD_REJECTS)
    assert job.count_records(records, (), files=1)["files_with_records"] == 1
    assert "files_with_records" not in job.count_records(records, (), files=job.FILE_SETS_UP_TO + 1)

    packed = tmp_path / "day.tar.gz"
    packed.write_bytes(gzip.compress(tar_path.read_bytes()))
    assert _member_rows(spark, [packed], f"{packed}!/") == from_tar  # one task reads it as a stream


def test_read_records_reads_zip_members_and_xz_and_zstd_files(spark, tmp_path):
    """A zip download gives the records of its members as the unzipped directory does, each member
    a file of its own and a unit of the parse plan; xz and zstd files read as the plain file."""
    import lzma
    import zipfile

    import zstandard

    from sentiment_core.spark import plan_parse

    unzipped = tmp_path / "unzipped"
    (unzipped / "minutes").mkdir(parents=True)
    (unzipped / "minutes" / "29.json.bz2").write_bytes(bz2.compress(V1_SAMPLE.read_bytes()))
    (unzipped / "bad.jsonl").write_bytes(V1_BAD.read_bytes())
    zip_path = tmp_path / "download.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(unzipped.rglob("*.*")):
            z.write(f, f.relative_to(unzipped).as_posix())
        z.writestr("__MACOSX/._bad.jsonl", b"\x00\x05\x16\x07")  # hidden: skipped
    from_zip = _member_rows(spark, [zip_path], f"{zip_path}!/")
    assert from_zip == _member_rows(spark, [unzipped], f"{unzipped}/")
    assert {r[-1] for r in from_zip} == {"minutes/29.json.bz2", "bad.jsonl"}
    tasks, stats = plan_parse(spark, [str(zip_path)], "auto", 1)
    assert (stats["zip_files"], stats["zip_members"], stats["tar_files"], stats["tasks"]) == (1, 2, 0, 2)

    xz, zst = tmp_path / "m.jsonl.xz", tmp_path / "m.jsonl.zst"
    xz.write_bytes(lzma.compress(V1_SAMPLE.read_bytes()))
    zst.write_bytes(zstandard.ZstdCompressor().compress(V1_SAMPLE.read_bytes()))
    plain = _member_rows(spark, [V1_SAMPLE], str(V1_SAMPLE))
    assert _member_rows(spark, [xz], str(xz)) == plain and _member_rows(spark, [zst], str(zst)) == plain and len(plain) > 20


TWARC_CSV = (  # twarc-csv's columns; a text with commas, quotes and a newline; one bad row of each kind
    "id,conversation_id,created_at,text,author.username,lang\n"
    '1364000000000000001,1,2021-02-23T01:00:00.000Z,"good, ""great"" day\nwith a second line",ann,en\n'
    "1364000000000000002,2,2021-02-23T23:30:00.000Z,this is awful,bob,en\n"
    "1364000000000000003,3,2021-02-23T03:00:00.000Z,,cid,en\n"  # -> empty_text
    "1364000000000000004,4,yesterday,some text,dee,en\n"  # -> bad_timestamp
    ",5,2021-02-23T05:00:00.000Z,no id,eve,en\n"  # -> missing_id
    "1364000000000000006,6,2021-02-23T06:00:00.000Z,oops, an unquoted comma,gil,en\n")  # -> bad_field_count


def test_csv_tables_compressed_or_in_a_zip_read_as_the_plain_file(spark, tmp_path):
    """A CSV table compressed with xz or zstd, or a member of a zip download (Kaggle's way), gives
    the records of the plain file; the zip's other members are parsed as before; rejects carry the
    line their row starts on; a table that breaks off ends in one truncated_file reject."""
    import lzma
    import zipfile

    import zstandard

    from sentiment_core.spark import read_records

    (tmp_path / "in").mkdir()
    data = TWARC_CSV.encode()
    (tmp_path / "plain.csv").write_bytes(data)
    (tmp_path / "in" / "t.csv.xz").write_bytes(lzma.compress(data))
    (tmp_path / "in" / "t.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    with zipfile.ZipFile(tmp_path / "in" / "download.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data/tweets.csv", data)
        z.writestr("data/stream.jsonl", V1_SAMPLE.read_bytes())

    def rows(paths, plan=None):
        df = read_records(spark, [str(p) for p in paths], plan=plan).drop("detected_at").toPandas()
        return df.assign(raw=df["raw"].map(lambda r: json.loads(r) if r and r.startswith("{") else r),
                         line_no=df["line_no"].astype("Int64"))

    def without_source(df):
        return sorted(map(repr, df.drop(columns="source_file").to_dict("records")))

    plain_read = rows([tmp_path / "plain.csv"])
    rejects = plain_read[plain_read["kind"] == "reject"].sort_values("line_no")
    assert list(zip(rejects["line_no"], rejects["reason"])) == [
        (5, "empty_text"), (6, "bad_timestamp"), (7, "missing_id"), (8, "bad_field_count")]  # row 1 is lines 2-3
    plan: dict = {}
    got = rows([tmp_path / "in"], plan)
    assert plan["csv_tables"] == 3 and (plan["zip_files"], plan["zip_members"], plan["tasks"]) == (1, 1, 1)
    for source in ("t.csv.xz", "t.csv.zst", "download.zip!/data/tweets.csv"):
        table = got[got["source_file"] == str(tmp_path / "in" / source)]
        assert without_source(table) == without_source(plain_read) and len(table) == 6
    stream = got[got["source_file"].str.endswith("!/data/stream.jsonl")]
    assert without_source(stream) == without_source(rows([V1_SAMPLE]))

    from sentiment_core.spark import TABLE_EXTRA, table_names

    assert table_names('id,text,," text"', ",") == ["id", "text", "_c2", "text_2", TABLE_EXTRA]
    broken = tmp_path / "broken.csv"  # a quote left open on line 4 would swallow the rest of the file
    broken.write_text(TWARC_CSV.splitlines()[0] + "\n" + "\n".join(
        [f'{i},{i},2021-02-23T01:00:00.000Z,"fine",ann,en' for i in (1, 2)] + ['3,3,2021-02-23T01:00:00.000Z,"open'] +
        [f'{i},{i},2021-02-23T01:00:00.000Z,rest,ann,en' for i in range(4, 20000)]) + "\n")
    got_broken = rows([broken])
    assert (got_broken["kind"] == "tweet").sum() == 2 + 19_996  # the line with the open quote is the one reject
    assert got_broken[got_broken["kind"] == "reject"][["reason", "line_no"]].values.tolist() == [["unbalanced_quote", 4]]
    whole = lzma.compress(data * 400)
    (tmp_path / "cut.csv.xz").write_bytes(whole[: len(whole) // 2])
    cut = rows([tmp_path / "cut.csv.xz"])
    assert cut["reason"].tolist()[-1] == "truncated_file" and "breaks off" in cut["raw"].tolist()[-1]


def test_twarc_csv_reads_to_the_tweets_of_the_json_it_was_made_from(spark):
    """``twarc2 csv`` output (twarc-csv 0.7.2 run on the v2 page fixture): the same ids, times,
    users, languages and full texts as the v2 reader gives the pages, retweets marked by
    referenced_tweets.retweeted.id and texts with their newlines back (twarc-csv writes them as \\n)."""
    from sentiment_core.spark import read_records

    cols = ["tweet_id", "created_at", "user", "lang", "text", "is_retweet"]

    def tweets(path):
        return sorted(tuple(r) for r in read_records(spark, [str(path)]).where("kind = 'tweet'").select(*cols).collect())

    from_csv = tweets(FIXTURES / "archives" / "v2_page.twarc.csv")
    assert from_csv == tweets(FIXTURES / "archives" / "v2_page.jsonl") and len(from_csv) == 7
    assert sum(r[-1] for r in from_csv) == 3 and any("\n\n" in r[4] for r in from_csv)


def test_sentiment140_with_a_header_line_reads_as_the_headerless_file(spark, tmp_path):
    """Copies of Sentiment140 given a header (``target,ids,date,flag,user,text``, as many dataset
    mirrors have it) are CSV tables: their ids (``ids``), "PDT" times, users and texts are those the
    Sentiment140 reader gives the published file."""
    from sentiment_core.spark import read_records

    with_header = tmp_path / "sentiment140_with_header.csv"
    with_header.write_bytes(b"target,ids,date,flag,user,text\n" + (FIXTURES / "sentiment140_300.csv").read_bytes())
    cols = ["tweet_id", "created_at", "user", "text"]

    def tweets(path):
        return sorted(tuple(r) for r in read_records(spark, [str(path)]).where("kind = 'tweet'").select(*cols).collect())

    got = tweets(with_header)
    assert got == tweets(FIXTURES / "sentiment140_300.csv") and len(got) == 300
    semi = tmp_path / "semicolons.csv"  # European Excel's CSV: fields separated by ';'
    semi.write_text("id;created_at;text\n7;2021-01-01T07:29:00Z;\"so good, really\"\n")
    assert [tuple(r) for r in read_records(spark, [str(semi)]).select("kind", "tweet_id", "text").collect()] == [
        ("tweet", "7", "so good, really")]
    quoted = tmp_path / "quoted_header.csv"  # the header quoted as the rows are (pandas' QUOTE_ALL): not a reject
    quoted.write_bytes(b'"target","ids","date","flag","user","text"\n' + (FIXTURES / "sentiment140_300.csv").read_bytes())
    assert tweets(quoted) == got
    assert read_records(spark, [str(quoted)]).count() == 300


def test_table_columns_are_found_without_case_spaces_or_underscores(spark, tmp_path):
    """The CSV that snscrape tutorials write (``Datetime,Tweet Id,Text,Username``) and snscrape's
    own JSON Lines beside it: both found by name, neither needing --id-col and the like."""
    from sentiment_core.spark import read_records

    (tmp_path / "tweets.csv").write_text('Datetime,Tweet Id,Text,Username\n'
                                         '2022-05-01 10:00:00+00:00,1520000000000000001,"so good, really",ann\n')
    shutil.copy(FIXTURES / "archives" / "snscrape_sample.jsonl", tmp_path / "scraped.jsonl")
    got = read_records(spark, [str(tmp_path)]).where("kind = 'tweet'").toPandas().set_index("tweet_id")
    assert got.loc["1520000000000000001", ["text", "user"]].tolist() == ["so good, really", "ann"]
    assert str(got.loc["1520000000000000001", "dt"]) == "2022-05-01" and len(got) == 21

    export = tmp_path / "other" / "export.jsonl"  # fields no name list knows: named as --id-col ... name them
    export.parent.mkdir()
    export.write_text('{"tid": "7", "posted": "2022-05-01T08:00:00Z", "body": {"msg": "hello"}}\n')
    named = {"id": "tid", "time": "posted", "text": "body.msg", "user": None}
    got = read_records(spark, [str(export)], columns=named).select("kind", "tweet_id", "text").collect()
    assert [tuple(r) for r in got] == [("tweet", "7", "hello")]


def test_parquet_tables_as_pandas_writes_them(spark, tmp_path):
    """pandas' defaults: datetime64[ns] (Parquet TIMESTAMP(NANOS), which Spark refuses as a
    timestamp), epoch milliseconds in an integer column, a column only some days' files have, an
    id column int64 in one file and text in another; a float64 id column (pandas' integer column
    with a gap) is refused, since it cannot hold tweet ids exactly; far-off times are rejects."""
    from sentiment_core.spark import read_records

    base = pd.DataFrame({"id": [1344908468193435649, 1344908468159823872], "text": ["good day", "bad day"],
                         "created_at": pd.to_datetime(["2021-01-01 07:29:00", "2021-01-02 08:00:00"], utc=True)})
    day1 = tmp_path / "day1"
    day1.mkdir()
    base.to_parquet(day1 / "ns.parquet")  # nanoseconds, tz-aware
    ms = base.assign(id=base["id"] + 10, created_at=base["created_at"].astype("int64") // 10**6, lang=["en", "ja"])
    ms.to_parquet(day1 / "ms.parquet")  # epoch ms, and a lang column the other file lacks
    text_ids = base.assign(id=(base["id"] + 20).astype(str), created_at=base["created_at"].dt.tz_localize(None))
    text_ids.to_parquet(tmp_path / "text_ids.parquet")  # naive nanoseconds, ids as text
    far = pd.DataFrame({"id": [7, 8, 9], "text": ["a", "b", "c"], "created_at": [1609486140e3, 1.6e21, 5e12]})
    far.to_parquet(tmp_path / "far.parquet")  # ms as floats; 10^21 of some unit; seconds in the year 160,000
    got = (read_records(spark, [str(tmp_path)]).selectExpr("kind", "reason", "tweet_id", "cast(created_at as long) e", "lang")
           .toPandas().sort_values("tweet_id"))
    tweets = got[got["kind"] == "tweet"]
    want = {str(i + k): e for k in (0, 10, 20) for i, e in zip(base["id"], (1609486140, 1609574400))} | {"7": 1609486140}
    assert dict(zip(tweets["tweet_id"], tweets["e"])) == want
    assert dict(zip(tweets["tweet_id"], tweets["lang"].where(tweets["lang"].notna(), None))) == {
        **{k: None for k in want}, str(base["id"][0] + 10): "en", str(base["id"][1] + 10): "ja"}
    assert got[got["kind"] == "reject"][["tweet_id", "reason"]].values.tolist() == [["8", "bad_timestamp"],
                                                                                 ["9", "bad_timestamp"]]
    floats = tmp_path / "floats"
    floats.mkdir()
    base.assign(id=base["id"].astype("float64")).to_parquet(floats / "f.parquet")
    with pytest.raises(ValueError, match="holds double numbers, which cannot hold tweet ids exactly"):
        read_records(spark, [str(floats)])


def test_csv_tables_a_quoted_header_and_a_quote_never_closed(spark, tmp_path):
    """A table written with every field quoted (6 columns, as Sentiment140's lines are) is a table;
    a text that opens a quote and never closes it is one unbalanced_quote reject, and the rows it
    would have swallowed are read as rows."""
    from sentiment_core.spark import read_records

    rows = [(100 + i, f"2021-01-01T07:{i:02d}:00Z", f"u{i}", "en", f"tweet {i}", "False") for i in range(30)]
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('"id","created_at","user","lang","text","is_retweet"\n'
                      + "".join(",".join(f'"{v}"' for v in r) + "\n" for r in rows))
    got = read_records(spark, [str(quoted)]).where("kind = 'tweet'").select("tweet_id", "text").collect()
    assert sorted((r["tweet_id"], r["text"]) for r in got) == sorted((str(r[0]), r[4]) for r in rows)
    broken = tmp_path / "broken.csv"
    lines = [f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]}" for r in rows]
    lines[10] = f'{rows[10][0]},{rows[10][1]},u10,en,"starts a quote it never ends'
    lines[20] = f'{rows[20][0]},{rows[20][1]},u20,en,"quoted" and more'
    broken.write_text("id,created_at,user,lang,text\n" + "\n".join(lines) + "\n")
    got = read_records(spark, [str(broken)]).select("kind", "reason", "tweet_id", "text", "line_no").toPandas()
    assert (got["kind"] == "tweet").sum() == 29
    reject = got[got["kind"] == "reject"]
    assert reject["reason"].tolist() == ["unbalanced_quote"] and reject["line_no"].tolist() == [12]
    assert got.set_index("tweet_id").loc["120", "text"] == "quoted and more"
    assert got.set_index("tweet_id").loc["111", "text"] == "tweet 11"


# ---------------------------------------------------------------------------------------------
# 2. + 3. the job end to end on mixed inputs


CUT_STREAMS = 3  # whole 4-line bz2 streams kept in the truncated file


def test_prepare_tweets_dedups_only_when_ids_repeat(spark):
    """Without repeated ids (what count_records found) the window over tweet_id, a shuffle of
    every tweet, is left out of the plan; the rows are the same either way."""
    from sentiment_core.spark import read_records

    records = read_records(spark, [str(V1_SAMPLE), str(V2_PAGE)])
    plans = {}
    for dup in (True, False):
        df = job.prepare_tweets(records, (), duplicates=dup)
        plans[dup] = (df._jdf.queryExecution().optimizedPlan().toString(),
                      sorted(tuple(r) for r in df.select("tweet_id", "text", "source_file").collect()))
    assert "Window" in plans[True][0] and "Window" not in plans[False][0]
    assert plans[True][1] == plans[False][1] and len(plans[False][1]) > 20


@pytest.fixture(scope="module")
def mixed_inputs(tmp_path_factory) -> tuple[Path, dict]:
    """A directory of mixed inputs and the job's expected numbers for it."""
    root = tmp_path_factory.mktemp("mixed")
    inp = root / "in"
    inp.mkdir()
    sample = V1_SAMPLE.read_bytes()
    lines = sample.splitlines(keepends=True)
    (inp / "a_v1_sample.jsonl.bz2").write_bytes(bz2.compress(sample))
    shutil.copy(V1_BAD, inp / "b_v1_bad.jsonl")
    shutil.copy(V2_PAGE, inp / "c_v2_page.jsonl")
    shutil.copy(V2_PAGE, inp / "d_v2_page_copy.jsonl")  # every id a duplicate
    streams = multistream_bz2(lines)
    cut = b"".join(streams[:CUT_STREAMS]) + streams[CUT_STREAMS][: len(streams[CUT_STREAMS]) // 2]
    (inp / "e_cut.jsonl.bz2").write_bytes(cut)
    n_cut = 4 * CUT_STREAMS
    (inp / "f_item_files.xml").write_text('<?xml version="1.0"?>\n<files>\n</files>\n')  # skipped: no tweets

    s_tweets, s_deletes = v1_expected(lines)
    c_tweets, c_deletes = v1_expected(lines[:n_cut])
    page = v2_page_expected(V2_PAGE)
    bad_tweets = [{"tweet_id": i, "lang": lang, "created_at": V1_BAD_TIMES[i]} for i, lang in V1_BAD_TWEETS.items()]
    all_tweets = s_tweets + bad_tweets + page + page + c_tweets
    reject_rows = [("b_v1_bad.jsonl", n, r) for n, r in V1_BAD_REJECTS] + [("e_cut.jsonl.bz2", n_cut + 1, "truncated_file")]
    exp = {
        "records_read": len(s_tweets) + len(s_deletes) + 13 + 2 * len(page) + len(c_tweets) + len(c_deletes) + 1,
        "tweets": all_tweets,
        "deletes": sorted(s_deletes + V1_BAD_DELETES + c_deletes),
        "reject_rows": sorted(reject_rows),
        "n_cut": n_cut,
    }
    assert len(c_tweets) > 0 and len(c_deletes) > 0  # the cut keeps both kinds
    return inp, exp


@pytest.fixture(scope="module")
def mixed_run(spark, tiny_artifact, mixed_inputs, tmp_path_factory):
    inp, exp = mixed_inputs
    out = tmp_path_factory.mktemp("mixed_out") / "out"
    cfg = job.ScoreConfig(inputs=(str(inp),), model=str(tiny_artifact), output=str(out), include_text=True,
                          files_per_task=2)
    summary = job.run(cfg, spark=spark)
    return out, summary, exp


def test_job_mixed_inputs_summary_reconciles(mixed_run, tiny_artifact):
    out, s, exp = mixed_run
    tweets = exp["tweets"]
    ids = [t["tweet_id"] for t in tweets]
    assert len(ids) - len(set(ids)) > 10  # the copies made real duplicates
    meta = json.loads((tiny_artifact / "metadata.json").read_text())

    assert s["reconciled"] is True
    assert s["files"] == 5 and s["files_with_records"] == 5 and s["files_skipped"] == 1
    # 5 small files, 2 a task, but no idle slot of local[2]: 3 tasks, none cut into ranges
    assert (s["parse"]["files"], s["parse"]["tasks"], s["parse"]["split_files"], s["parse"]["decode_threads"]) == \
        (5, 3, 0, 1)
    assert s["model_version"] == meta["model_version"]
    assert s["records_read"] == exp["records_read"]
    assert s["tweets_read"] == len(tweets)
    assert s["delete_notices"] == len(exp["deletes"])
    assert s["rejected"] == len(exp["reject_rows"])
    assert s["rejected_by_reason"] == dict(Counter(r for _, _, r in exp["reject_rows"]))
    assert s["filtered_lang"] == 0
    assert s["filtered_duplicate"] == len(ids) - len(set(ids))
    assert s["scored"] == s["to_score"] == len(set(ids))
    assert s["records_read"] == (s["scored"] + s["rejected"] + s["delete_notices"] + s["filtered_lang"]
                                 + s["filtered_duplicate"])
    assert s["partitions_written"] == sorted({t["created_at"].date().isoformat() for t in tweets})
    # the summary file next to the output is the same summary
    assert json.loads((out / "runs" / f"{s['run_id']}.json").read_text()) == json.loads(json.dumps(s))
    assert (out / job.MARKER).is_file()


def test_job_mixed_inputs_tables(mixed_run, spark, tiny_artifact):
    out, s, exp = mixed_run
    meta = json.loads((tiny_artifact / "metadata.json").read_text())
    mv = meta["model_version"]

    # rejects: reasons, raw, source file and line
    rej = read_table(spark, out / "rejects" / f"run_id={s['run_id']}")
    got = sorted(zip(rej["source_file"].map(lambda p: Path(p).name), rej["line_no"], rej["reason"]))
    assert got == exp["reject_rows"]
    bad_lines = V1_BAD.read_text().split("\n")
    for src, line_no, raw, reason in zip(rej["source_file"], rej["line_no"], rej["raw"], rej["reason"]):
        if src.endswith("b_v1_bad.jsonl"):
            assert raw == bad_lines[line_no - 1]
        else:
            assert reason == "truncated_file"
            assert raw.startswith(f"file breaks off after line {exp['n_cut']}")
    assert rej["detected_at"].notna().all()

    # deletes: every notice, duplicates included
    dels = read_table(spark, out / "deletes" / f"run_id={s['run_id']}")
    assert sorted(dels["tweet_id"]) == exp["deletes"]

    # scores: hive layout scores/model_version=V/dt=D/
    dirs = sorted(p.relative_to(out / "scores").as_posix() for p in (out / "scores").glob("*/*") if p.is_dir())
    dates = sorted({t["created_at"].date().isoformat() for t in exp["tweets"]})
    assert dirs == [f"model_version={mv}/dt={d}" for d in dates]
    scores = read_table(spark, out / "scores")
    assert len(scores) == len({t["tweet_id"] for t in exp["tweets"]})
    assert not scores.duplicated(["dt", "model_version", "tweet_id"]).any()
    assert set(scores["tweet_id"]) == {t["tweet_id"] for t in exp["tweets"]}
    assert (scores["run_id"] == s["run_id"]).all() and (scores["model_version"] == mv).all()
    assert set(scores["label"]) <= set(meta["labels"])
    assert scores["score"].between(0, 1).all()
    for col in ("tweet_id", "created_at", "user", "lang", "text", "is_retweet", "source_file", "score",
                "label", "run_id", "scored_at", "model_version", "dt"):
        assert col in scores.columns, col
    by_id = scores.set_index("tweet_id")
    assert by_id.loc["908", "text"] == "numeric id only &amp; an offset"
    assert by_id.loc["914", "text"] == "RT @x: …"
    # the first copy of a duplicate wins (sorted by source file, then line)
    assert by_id.loc["1380242611781386245", "source_file"].endswith("c_v2_page.jsonl")
    for t in exp["tweets"]:
        assert str(by_id.loc[t["tweet_id"], "dt"]) == t["created_at"].date().isoformat()


def test_job_scores_equal_in_process_scorer(mixed_run, spark, tiny_artifact):
    from sentiment_core.scorer import Scorer

    out, s, _ = mixed_run
    scores = read_table(spark, out / "scores").sort_values("tweet_id").reset_index(drop=True)
    assert len(scores) == 29  # 20 + 2 + 7 distinct tweets
    ref_score, ref_label = Scorer(str(tiny_artifact)).score(scores["text"].tolist())
    diff = np.abs(scores["score"].to_numpy(np.float64) - ref_score.astype(np.float64))
    assert diff.max() <= 1e-5, diff.max()
    assert scores["label"].tolist() == list(ref_label)


def test_job_runs_the_model_once_per_text(spark, tiny_artifact, tmp_path):
    """Retweets repeat their original's text: the job scores every tweet, runs the model on each
    distinct text once and says so in the summary (``model_rows``); repeats get the same scores."""
    from sentiment_core.text import normalize_all

    lines = [json.loads(x) for x in V1_SAMPLE.read_text().splitlines() if x.strip()]
    tweets = [t for t in lines if "delete" not in t]
    copies = []
    for i, t in enumerate(tweets[:6]):  # new ids, same texts, as retweets of them carry
        c = json.loads(json.dumps(t))
        c["id"], c["id_str"] = 10 ** 18 + i, str(10 ** 18 + i)
        copies.append(c)
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(json.dumps(t) for t in tweets + copies) + "\n")
    s = job.run(job.parse_args(["--input", str(inp), "--model", str(tiny_artifact), "--output", str(tmp_path / "out"),
                                "--include-text"]), spark=spark)
    scores = read_table(spark, tmp_path / "out" / "scores")
    meta = json.loads((tiny_artifact / "metadata.json").read_text())
    distinct = len(set(normalize_all(scores["text"], meta["normalization"])))
    assert s["reconciled"] is True and s["scored"] == len(scores) == len(tweets) + len(copies)
    assert distinct == len(tweets)  # the fixture's texts differ, the copies repeat them
    assert s["model_rows"] == distinct
    by_text = scores.groupby("text")["score"].nunique()
    assert (by_text == 1).all() and (scores.groupby("text").size() == 2).sum() == len(copies)


def test_job_lang_filter_and_no_text(spark, tiny_artifact, mixed_inputs, tmp_path, monkeypatch):
    """... and with more input files than count_records takes sets of (0 here), the files that
    gave records are counted by a job of their own."""
    monkeypatch.setattr(job, "FILE_SETS_UP_TO", 0)
    inp, exp = mixed_inputs
    out = tmp_path / "out"
    summary = job.run(job.parse_args(["--input", str(inp), "--model", str(tiny_artifact), "--output", str(out),
                                      "--lang", "en"]), spark=spark)
    tweets = exp["tweets"]
    en = [t["tweet_id"] for t in tweets if t["lang"] == "en"]
    assert summary["reconciled"] is True
    assert summary["filtered_lang"] == len(tweets) - len(en) > 0
    assert summary["filtered_lang_no_language"] == sum(t["lang"] is None for t in tweets)
    assert summary["filtered_duplicate"] == len(en) - len(set(en))
    assert summary["scored"] == len(set(en))
    assert summary["records_read"] == exp["records_read"] and summary["files_with_records"] == 5
    scores = read_table(spark, out / "scores")
    assert "text" not in scores.columns
    assert set(scores["tweet_id"]) == set(en) and len(scores) == len(set(en))
    assert set(scores["lang"]) == {"en"}


# ---------------------------------------------------------------------------------------------
# 4. idempotent re-runs


def test_rerun_replaces_partitions(spark, tiny_artifact, tmp_path):
    out = tmp_path / "out"
    inputs = [str(V1_SAMPLE), str(V1_BAD), str(V2_PAGE)]
    argv = ["--input", *inputs, "--model", str(tiny_artifact), "--output", str(out)]
    first = job.run(job.parse_args(argv), spark=spark)
    rows1 = read_table(spark, out / "scores")
    second = job.run(job.parse_args(argv), spark=spark)
    rows2 = read_table(spark, out / "scores")
    assert first["run_id"] != second["run_id"]
    assert first["partitions_replaced"] == [] and second["partitions_replaced"] == second["partitions_written"]

    s_tweets, _ = v1_expected(V1_SAMPLE.read_bytes().splitlines())
    n = len(s_tweets) + len(V1_BAD_TWEETS) + len(v2_page_expected(V2_PAGE))
    assert first["scored"] == second["scored"] == len(rows1) == len(rows2) == n
    assert set(rows2["run_id"]) == {second["run_id"]}  # replaced, not appended
    assert not rows2.duplicated(["dt", "model_version", "tweet_id"]).any()
    key = ["tweet_id"]
    cols = [c for c in rows1.columns if c not in ("run_id", "scored_at")]
    a = rows1[cols].sort_values(key).reset_index(drop=True)
    b = rows2[cols].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # both runs left their summary
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        [f"{first['run_id']}.json", f"{second['run_id']}.json"])

    # a run replaces only the partitions it writes, even on a session in static overwrite mode
    key_conf = "spark.sql.sources.partitionOverwriteMode"
    before = spark.conf.get(key_conf)
    spark.conf.set(key_conf, "static")
    try:
        third = job.run(job.parse_args(["--input", str(V2_PAGE), "--model", str(tiny_artifact),
                                        "--output", str(out)]), spark=spark)
    finally:
        spark.conf.set(key_conf, before)
    rows3 = read_table(spark, out / "scores")
    v2_dates = {str(d) for d in rows3.loc[rows3["run_id"] == third["run_id"], "dt"]}
    assert v2_dates == {"2021-04-08", "2021-06-14"}
    kept = rows3[rows3["run_id"] == second["run_id"]]
    assert {str(d) for d in kept["dt"]} == {"2021-01-01"}  # the v1 partition survived untouched
    assert len(rows3) == n
    pd.testing.assert_frame_equal(
        rows3[cols].sort_values(key).reset_index(drop=True), b)

    # the third run had no rejects and no delete notices: its partitions hold no rows, and each
    # table still reads as one table over Spark's files and the empty one (as the query job reads it)
    from sentiment_core.tables import read_table as read_output

    assert third["rejected"] == third["delete_notices"] == 0
    for table, count in (("rejects", "rejected"), ("deletes", "delete_notices")):
        df = read_output(spark, str(out), table).toPandas()
        assert (out / table / f"run_id={third['run_id']}").is_dir()
        assert (df["run_id"] == third["run_id"]).sum() == 0
        assert len(df) == first[count] + second[count] > 0
    rej = read_output(spark, str(out), "rejects")
    assert dict(rej.dtypes)["detected_at"] == "timestamp" and dict(rej.dtypes)["line_no"] == "bigint"


def test_every_spark_job_of_a_run_is_in_the_callers_job_group(spark, tiny_artifact, tmp_path):
    """A caller's job group (to cancel a run, or find it in the UI) covers every Spark job the run
    starts, those of the thread that writes the side tables included."""
    sc = spark.sparkContext
    tracker = sc.statusTracker()
    ungrouped = set(tracker.getJobIdsForGroup(None))
    sc.setJobGroup("score-run-under-test", "jobs.score run")
    try:
        s = job.run(job.parse_args(["--input", str(V1_SAMPLE), "--model", str(tiny_artifact), "--output",
                                    str(tmp_path / "out")]), spark=spark)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    assert s["delete_notices"] > 0  # the deletes side table ran a Spark job
    assert len(tracker.getJobIdsForGroup("score-run-under-test")) >= 3
    assert set(tracker.getJobIdsForGroup(None)) == ungrouped


def test_failed_run_adds_rows_to_no_table(spark, tiny_artifact, tmp_path):
    """A run whose scoring fails (the test hook fails partition 0; plain local[2] never retries)
    raises and leaves the output as the earlier run left it: no rejects or deletes partition of
    its own (they are staged until the scores are written), no staging left, no summary."""
    from sentiment_core.spark import FAIL_FIRST_ATTEMPT_CONF

    out = tmp_path / "out"
    argv = ["--input", str(V1_SAMPLE), str(V1_BAD), "--model", str(tiny_artifact), "--output", str(out)]
    first = job.run(job.parse_args(argv), spark=spark)
    tables = {t: sorted(p.name for p in (out / t).iterdir()) for t in ("rejects", "deletes", "runs")}
    assert tables["rejects"] == tables["deletes"] == [f"run_id={first['run_id']}"]
    spark.conf.set(FAIL_FIRST_ATTEMPT_CONF, "true")
    try:
        with pytest.raises(Exception, match="injected failure"):
            job.run(job.parse_args(argv), spark=spark)
    finally:
        spark.conf.unset(FAIL_FIRST_ATTEMPT_CONF)
    assert {t: sorted(p.name for p in (out / t).iterdir()) for t in tables} == tables
    assert not any((out / "_staging").iterdir())
    assert set(read_table(spark, out / "scores")["run_id"]) == {first["run_id"]}


# ---------------------------------------------------------------------------------------------
# 5. the model is loaded once per Python worker


def test_model_loaded_once_per_worker(spark, tiny_artifact):
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    artifact = str(tiny_artifact.resolve())
    n_tasks = 10

    @pandas_udf("pid long, loads long, part long, rayon string")
    def probe(ids: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        import os

        from pyspark import TaskContext

        from sentiment_core import scorer as scorer_mod
        from sentiment_core.spark import worker_scorer

        scorer = worker_scorer(artifact, 64)
        part = TaskContext.get().partitionId()
        for batch in ids:
            scorer.score(["a tweet"])  # really usable
            yield pd.DataFrame({"pid": [os.getpid()] * len(batch),
                                "loads": [scorer_mod.load_counts[(os.path.abspath(artifact), scorer.backend)]] * len(batch),
                                "part": [part] * len(batch), "rayon": [os.environ.get("RAYON_NUM_THREADS")] * len(batch)})

    df = (spark.range(0, 200, numPartitions=n_tasks).select(probe(F.col("id")).alias("p")).select("p.*")
          .toPandas())
    assert len(df) == 200
    assert df["part"].nunique() == n_tasks
    assert (df["loads"] == 1).all(), df.groupby("pid")["loads"].max().to_dict()
    assert df["pid"].nunique() < n_tasks
    assert (df["rayon"] == "1").all()  # the tokenizer's threads: the task's one CPU, not every core


# ---------------------------------------------------------------------------------------------
# 6. errors a user can act on


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_error_missing_artifact(tmp_path, capsys):
    rc = job.main(["--input", str(V1_SAMPLE), "--model", str(tmp_path / "nope"), "--output", str(tmp_path / "o")])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "not found" in line and str(tmp_path / "nope") in line
    assert not (tmp_path / "o").exists()


def test_error_artifact_without_metadata(tmp_path, capsys, tiny_artifact):
    art = tmp_path / "art"
    shutil.copytree(tiny_artifact, art)
    (art / "metadata.json").unlink()
    rc = job.main(["--input", str(V1_SAMPLE), "--model", str(art), "--output", str(tmp_path / "o")])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "metadata.json" in line and "missing" in line


def test_error_missing_input(tmp_path, capsys, tiny_artifact):
    missing = tmp_path / "no_such_input"
    rc = job.main(["--input", str(missing), "--model", str(tiny_artifact), "--output", str(tmp_path / "o")])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "does not exist" in line and str(missing) in line


def test_error_foreign_output_then_overwrite(tmp_path, capsys, tiny_artifact, spark, monkeypatch):
    out = tmp_path / "o"
    out.mkdir()
    (out / "precious.txt").write_text("not yours")
    argv = ["--input", str(V1_SAMPLE), "--model", str(tiny_artifact), "--output", str(out)]
    assert job.main(argv) == 2
    line = _one_error_line(capsys)
    assert "not empty" in line and "--overwrite" in line
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]

    real_run = job.run
    monkeypatch.setattr(job, "run", lambda cfg: real_run(cfg, spark=spark))  # keep the shared session
    assert job.main(argv + ["--overwrite"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["reconciled"] is True and summary["scored"] == 20
    assert (out / job.MARKER).is_file()
    # now it is ours: a rerun without --overwrite is accepted
    assert job.main(argv) == 0


# ---------------------------------------------------------------------------------------------
# 7. Parquet input with custom column names


def test_parquet_input_with_mapped_columns(spark, tiny_artifact, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = lambda *a: dt.datetime(*a, tzinfo=UTC)  # noqa: E731
    rows = [
        (101, "what a lovely day", t(2021, 3, 1, 10, 0, 0), "ann"),
        (102, "this is awful, I hate it", t(2021, 3, 1, 23, 59, 59), "bob"),
        (103, "meh", t(2021, 3, 2, 0, 0, 1), None),
        (104, None, t(2021, 3, 2, 5, 0, 0), "dan"),  # -> empty_text
        (105, "no time", None, "eve"),  # -> bad_timestamp
        (106, "   ", t(2021, 3, 2, 6, 0, 0), "fay"),  # -> empty_text
    ]
    table = pa.table({
        "msg_id": pa.array([r[0] for r in rows], pa.int64()),
        "body": pa.array([r[1] for r in rows], pa.string()),
        "posted": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
        "handle": pa.array([r[3] for r in rows], pa.string()),
    })
    src = tmp_path / "tweets.parquet"
    pq.write_table(table, src)
    out = tmp_path / "out"
    summary = job.run(job.parse_args(["--input", str(src), "--model", str(tiny_artifact), "--output", str(out),
                                      "--id-col", "msg_id", "--text-col", "body", "--time-col", "posted",
                                      "--user-col", "handle", "--include-text"]), spark=spark)
    assert summary["reconciled"] is True
    assert summary["records_read"] == 6
    assert summary["rejected_by_reason"] == {"empty_text": 2, "bad_timestamp": 1}
    assert summary["scored"] == 3
    assert summary["partitions_written"] == ["2021-03-01", "2021-03-02"]

    scores = read_table(spark, out / "scores").set_index("tweet_id").sort_index()
    assert list(scores.index) == ["101", "102", "103"]
    assert scores["text"].tolist() == ["what a lovely day", "this is awful, I hate it", "meh"]
    assert [None if pd.isna(u) else u for u in scores["user"]] == ["ann", "bob", None]
    assert [str(d) for d in scores["dt"]] == ["2021-03-01", "2021-03-01", "2021-03-02"]
    assert scores["is_retweet"].tolist() == [False, False, False]
    got_epochs = spark.read.parquet(str(out / "scores")).selectExpr("tweet_id", "cast(created_at as long) e") \
        .toPandas().set_index("tweet_id").sort_index()["e"].tolist()
    assert got_epochs == [epoch(r[2]) for r in rows[:3]]

    rej = read_table(spark, out / "rejects" / f"run_id={summary['run_id']}")
    by_reason = sorted(zip(rej["reason"], rej["raw"].map(lambda r: json.loads(r)["msg_id"])))
    assert by_reason == [("bad_timestamp", 105), ("empty_text", 104), ("empty_text", 106)]
    assert rej["line_no"].isna().all()
    assert all(s.endswith(".parquet") for s in rej["source_file"])


def test_csv_tweet_tables_with_a_header_are_read_by_their_column_names(spark, tiny_artifact, tmp_path):
    """twarc-csv's CSV (``twarc2 csv``: a header, dotted column names, ISO times, texts with commas,
    quotes and newlines) and a gzipped TSV with the v1.1 API's times are read by their headers;
    bad rows are rejects; Sentiment140's headerless CSV beside them keeps its own reader."""
    import gzip

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "twarc.csv").write_text(TWARC_CSV)
    (tmp_path / "in" / "more.tsv.gz").write_bytes(gzip.compress(
        b"tweet_id\tcreated_at\ttext\tuser\n1364000000000000009\tWed Feb 24 09:00:00 +0000 2021\tlove it\tfay\n"))
    shutil.copy(FIXTURES / "sentiment140_300.csv", tmp_path / "in" / "s140.csv")
    out = tmp_path / "out"
    summary = job.run(job.parse_args(["--input", str(tmp_path / "in"), "--model", str(tiny_artifact),
                                      "--output", str(out), "--include-text"]), spark=spark)
    assert summary["reconciled"] is True
    s140 = summary["records_read"] - 7
    assert summary["rejected_by_reason"] == {"empty_text": 1, "bad_timestamp": 1, "missing_id": 1, "bad_field_count": 1}
    scores = read_table(spark, out / "scores").set_index("tweet_id")
    got = scores.loc[["1364000000000000001", "1364000000000000002", "1364000000000000009"]]
    assert got["text"].tolist() == ['good, "great" day\nwith a second line', "this is awful", "love it"]
    assert got["user"].tolist() == ["ann", "bob", "fay"] and got["lang"].tolist() == ["en", "en", None]
    assert [str(d) for d in got["dt"]] == ["2021-02-23", "2021-02-23", "2021-02-24"]
    assert s140 == 300 and len(scores) == 303  # the Sentiment140 rows by their own reader
    assert scores["source_file"].str.endswith("s140.csv").sum() == 300

    from sentiment_core.spark import csv_tables

    with pytest.raises(ValueError, match="not a CSV table with a header"):
        csv_tables([str(tmp_path / "in" / "s140.csv")], required=True)
    with pytest.raises(ValueError, match="no column 'id / tweet_id|no column 'tweet_id / id"):
        other = tmp_path / "other.csv"
        other.write_text("when,what\n2021-01-01,hello\n")
        job.run(job.parse_args(["--input", str(other), "--model", str(tiny_artifact), "--output",
                                str(tmp_path / "o2")]), spark=spark)


def test_output_as_a_uri_goes_through_the_sessions_file_systems(spark, tiny_artifact, tmp_path, capsys):
    """--output hdfs://..., s3a://...: the driver's own writes (marker, side tables moved in, run
    summary) go through the Hadoop file systems of the session, as Spark's writers do. A file: URI
    takes that path here: the same tables as a local path gives, a rerun replaces its days, a
    foreign directory is refused, and the tables read back from the URI."""
    from sentiment_core.tables import read_table as view

    inputs = [str(V1_SAMPLE), str(V1_BAD), str(V2_PAGE)]
    local, uri = tmp_path / "local", (tmp_path / "remote").as_uri()
    a = job.run(job.parse_args(["--input", *inputs, "--model", str(tiny_artifact), "--output", str(local)]), spark=spark)
    b = job.run(job.parse_args(["--input", *inputs, "--model", str(tiny_artifact), "--output", uri]), spark=spark)
    assert b["reconciled"] and b["output"] == uri and (b["scored"], b["rejected"]) == (a["scored"], a["rejected"])
    remote = tmp_path / "remote"
    assert (remote / job.MARKER).is_file() and (remote / "runs" / f"{b['run_id']}.json").is_file()
    assert [p.name for p in (remote / "rejects").iterdir()] == [f"run_id={b['run_id']}"]
    assert not any((remote / "_staging").iterdir())
    strip = lambda df: df.drop(columns=["run_id", "scored_at"]).sort_values("tweet_id").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(strip(read_table(spark, remote / "scores")), strip(read_table(spark, local / "scores")))
    assert view(spark, uri, "rejects").count() == a["rejected"] and view(spark, uri, "scores").count() == a["scored"]
    again = job.run(job.parse_args(["--input", *inputs, "--model", str(tiny_artifact), "--output", uri]), spark=spark)
    assert again["partitions_replaced"] == again["partitions_written"] and len(read_table(spark, remote / "scores")) == a["scored"]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("not yours")
    with pytest.raises(ValueError, match="not empty and is not an output of this job"):
        job.run(job.parse_args(["--input", *inputs, "--model", str(tiny_artifact), "--output", foreign.as_uri()]),
                spark=spark)
    assert [p.name for p in foreign.iterdir()] == ["precious.txt"]
