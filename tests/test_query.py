"""jobs/query.py and sentiment_core/tables.py over a hand-made scores table (answers worked out by
hand below), and the archive generator bench/make_archive.py read back by the real reader."""
from __future__ import annotations

import collections
import datetime as dt
import json

import pandas as pd
import pytest

from jobs import query

D1, D2, D3 = dt.date(2021, 1, 1), dt.date(2021, 1, 2), dt.date(2021, 1, 3)
INJECT = "'; DROP TABLE x; --"

# (tweet_id, created_at, user, lang, text, score v1, label v1, score v2, label v2); None: not scored
TWEETS = [
    ("t1", dt.datetime(2021, 1, 1, 8, 0), "alice", "en", "I love #Python!", 0.9, "positive", 0.8, "positive"),
    ("t2", dt.datetime(2021, 1, 1, 9, 30), "bob", "en", "#python is slow #pythonista", 0.3, "negative", 0.6, "positive"),
    ("t3", dt.datetime(2021, 1, 1, 9, 45), "O'Brien", "en", "no tags here, python", 0.6, "positive", 0.7, "positive"),
    ("t4", dt.datetime(2021, 1, 2, 10, 0), "alice", "fr", "J'adore #pythonista", 0.8, "positive", 0.3, "negative"),
    ("t5", dt.datetime(2021, 1, 2, 11, 0), "carol", "en", "terrible day #PYTHON", 0.1, "negative", 0.2, "negative"),
    ("t6", dt.datetime(2021, 1, 3, 12, 0), "bob", "en", "meh x#python", 0.4, "negative", None, None),
    ("t7", dt.datetime(2021, 1, 3, 13, 0), INJECT, "en", f"quote {INJECT} here", None, None, 0.55, "positive"),
]
SCORES_DDL = ("tweet_id string, created_at timestamp, user string, lang string, text string, is_retweet boolean, "
              "source_file string, score float, label string, run_id string, scored_at timestamp, "
              "model_version string, dt date")


def _rows():
    out = []
    for tid, created, user, lang, text, s1, l1, s2, l2 in TWEETS:
        for version, score, label, scored_at in (("v1", s1, l1, dt.datetime(2021, 2, 1)),
                                                 ("v2", s2, l2, dt.datetime(2021, 3, 1))):
            if score is not None:
                out.append((tid, created, user, lang, text, False, "f.json", score, label, f"run-{version}",
                            scored_at, version, created.date()))
    return out


@pytest.fixture(scope="module")
def out_dir(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("query") / "out"
    (spark.createDataFrame(_rows(), SCORES_DDL).write.partitionBy("model_version", "dt")
     .parquet(str(root / "scores")))
    (spark.createDataFrame([("{bad", "f.json", 3, "malformed_json", dt.datetime(2021, 2, 1))],
                           "raw string, source_file string, line_no long, reason string, detected_at timestamp")
     .write.parquet(str(root / "rejects" / "run_id=run-v1")))
    (root / "runs").mkdir()
    (root / "runs" / "run-v1.json").write_text(json.dumps({"run_id": "run-v1", "scored": 6}, indent=2))
    return root


@pytest.fixture(scope="module")
def no_text_dir(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("query_notext") / "out"
    (spark.createDataFrame(_rows(), SCORES_DDL).drop("text").write.partitionBy("model_version", "dt")
     .parquet(str(root / "scores")))
    return root


def q(spark, out_dir, *args, **kw):
    """(rows as tuples, the pandas result) of one report through the real run()."""
    cfg = query.parse_args(["--output", str(out_dir), *args])
    pdf, _title = query.run(cfg, spark)
    return pdf


def trend_rows(pdf):
    return [(r[0], int(r[1]), round(r[2], 6), round(r[3], 6)) for r in pdf.itertuples(index=False)]


def approx_rows(rows):
    return [(r[0], r[1], pytest.approx(r[2], abs=1e-6), pytest.approx(r[3], abs=1e-6)) for r in rows]


# ---------------------------------------------------------------------------------------------
# tables


def test_register_tables_views_and_types(spark, out_dir):
    from sentiment_core.tables import register_tables

    assert register_tables(spark, str(out_dir)) == ["scores", "rejects", "runs"]
    types = dict(spark.table("scores").dtypes)
    assert types["dt"] == "date" and types["model_version"] == "string"
    assert spark.sql("SELECT count(*) AS n FROM scores").first()["n"] == 12
    assert spark.table("rejects").select("run_id", "reason").collect()[0].asDict() == {
        "run_id": "run-v1", "reason": "malformed_json"}
    assert spark.table("runs").first()["scored"] == 6


def test_create_catalog_tables(spark, out_dir):
    from sentiment_core.tables import create_catalog_tables

    try:
        assert create_catalog_tables(spark, str(out_dir), database="ts_query_test") == [
            "ts_query_test.scores", "ts_query_test.rejects"]
        assert create_catalog_tables(spark, str(out_dir), database="ts_query_test")  # re-run: no error
        rows = spark.sql("SELECT model_version, count(*) AS n FROM ts_query_test.scores "
                         "GROUP BY model_version ORDER BY model_version").collect()
        assert [(r["model_version"], r["n"]) for r in rows] == [("v1", 6), ("v2", 6)]
        assert len(spark.sql("SHOW PARTITIONS ts_query_test.scores").collect()) == 6
        with pytest.raises(ValueError, match="database name"):
            create_catalog_tables(spark, str(out_dir), database="x; DROP")
    finally:
        spark.sql("DROP DATABASE IF EXISTS ts_query_test CASCADE")  # external: the files stay
    assert (out_dir / "scores").is_dir()


# ---------------------------------------------------------------------------------------------
# trend


def test_trend_default_is_latest_model_version(spark, out_dir):
    # v2 (greatest scored_at): day 1 t1 .8+, t2 .6+, t3 .7+; day 2 t4 .3-, t5 .2-; day 3 t7 .55+
    assert trend_rows(q(spark, out_dir, "trend")) == approx_rows(
        [(D1, 3, 1.0, 0.7), (D2, 2, 0.0, 0.25), (D3, 1, 1.0, 0.55)])


def test_trend_model_version_and_filters(spark, out_dir):
    v1 = ("--model-version", "v1")
    assert trend_rows(q(spark, out_dir, "trend", *v1)) == approx_rows(
        [(D1, 3, 2 / 3, 0.6), (D2, 2, 0.5, 0.45), (D3, 1, 0.0, 0.4)])
    assert trend_rows(q(spark, out_dir, "trend", *v1, "--from", "2021-01-02", "--to", "2021-01-02")) == approx_rows(
        [(D2, 2, 0.5, 0.45)])
    assert trend_rows(q(spark, out_dir, "trend", *v1, "--lang", "fr")) == approx_rows([(D2, 1, 1.0, 0.8)])
    assert trend_rows(q(spark, out_dir, "trend", *v1, "--user", "BOB")) == approx_rows(
        [(D1, 1, 0.0, 0.3), (D3, 1, 0.0, 0.4)])
    assert trend_rows(q(spark, out_dir, "trend", *v1, "--keyword", "Slow")) == approx_rows([(D1, 1, 0.0, 0.3)])


def test_trend_hashtag_is_a_whole_token(spark, out_dir):
    # #Python! (t1) #python (t2) #PYTHON (t5) match; #pythonista (t4), x#python (t6), "python" (t3) do not
    expected = approx_rows([(D1, 2, 0.5, 0.6), (D2, 1, 0.0, 0.1)])
    assert trend_rows(q(spark, out_dir, "trend", "--model-version", "v1", "--hashtag", "#python")) == expected
    assert trend_rows(q(spark, out_dir, "trend", "--model-version", "v1", "--hashtag", "Python")) == expected
    assert trend_rows(q(spark, out_dir, "trend", "--model-version", "v1", "--hashtag", "pythonista")) == approx_rows(
        [(D1, 1, 0.0, 0.3), (D2, 1, 1.0, 0.8)])


def test_trend_by_hour(spark, out_dir):
    pdf = q(spark, out_dir, "trend", "--model-version", "v1", "--by", "hour", "--from", "2021-01-01", "--to", "2021-01-01")
    assert list(pdf.columns) == ["hour", "tweets", "share_positive", "mean_score"]
    assert trend_rows(pdf) == approx_rows([(pd.Timestamp("2021-01-01 08:00"), 1, 1.0, 0.9),
                                           (pd.Timestamp("2021-01-01 09:00"), 2, 0.5, 0.45)])


def test_filter_values_with_quotes_are_literals(spark, out_dir):
    assert trend_rows(q(spark, out_dir, "trend", "--user", "O'Brien")) == approx_rows([(D1, 1, 1.0, 0.7)])
    assert trend_rows(q(spark, out_dir, "trend", "--user", INJECT)) == approx_rows([(D3, 1, 1.0, 0.55)])
    assert trend_rows(q(spark, out_dir, "trend", "--keyword", INJECT)) == approx_rows([(D3, 1, 1.0, 0.55)])
    assert trend_rows(q(spark, out_dir, "trend", "--lang", "en' OR '1'='1")) == []
    assert len(q(spark, out_dir, "top", "--keyword", "' OR 1=1 --")) == 0
    assert spark.sql("SELECT count(*) AS n FROM scores").first()["n"] == 12  # nothing dropped


# ---------------------------------------------------------------------------------------------
# top, compare, sql


def test_top_ordering(spark, out_dir):
    pdf = q(spark, out_dir, "top", "--model-version", "v1")
    assert list(pdf["tweet_id"]) == ["t1", "t4", "t3", "t6", "t2", "t5"]
    assert list(pdf.columns) == ["dt", "created_at", "tweet_id", "user", "lang", "score", "label", "text"]
    assert list(q(spark, out_dir, "top", "--model-version", "v1", "--limit", "3")["tweet_id"]) == ["t1", "t4", "t3"]
    assert list(q(spark, out_dir, "top", "--model-version", "v1", "--negative", "--limit", "2")["tweet_id"]) == ["t5", "t2"]
    assert list(q(spark, out_dir, "top", "--limit", "2")["tweet_id"]) == ["t1", "t3"]  # v2: .8, .7


def test_compare(spark, out_dir):
    # common ids t1..t5. day 1: t1 agree |.1|, t2 disagree |.3|, t3 agree |.1|; day 2: t4 disagree |.5|, t5 agree |.1|
    pdf = q(spark, out_dir, "compare", "--model-version", "v1", "--other-version", "v2")
    assert list(pdf.columns) == ["dt", "n", "agreement", "mean_abs_diff", "mean_score_a", "mean_score_b"]
    got = [(r[0], int(r[1]), *r[2:]) for r in pdf.itertuples(index=False)]
    def a(x):
        return pytest.approx(x, abs=1e-6)

    assert got == [("2021-01-01", 3, a(2 / 3), a(0.5 / 3), a(0.6), a(0.7)),
                   ("2021-01-02", 2, a(0.5), a(0.3), a(0.45), a(0.25)),
                   ("all", 5, a(0.6), a(0.22), a(0.54), a(0.52))]
    swapped = q(spark, out_dir, "compare", "--other-version", "v1")  # A defaults to the latest (v2)
    assert list(swapped["n"]) == [3, 2, 5]
    assert swapped["mean_score_a"].iloc[-1] == pytest.approx(0.52, abs=1e-6)
    only_d2 = q(spark, out_dir, "compare", "--model-version", "v1", "--other-version", "v2", "--from", "2021-01-02")
    assert list(only_d2["dt"]) == ["2021-01-02", "all"] and list(only_d2["n"]) == [2, 2]


def test_sql_over_views(spark, out_dir):
    pdf = q(spark, out_dir, "sql", "SELECT model_version, count(*) AS n, min(dt) AS first FROM scores "
                                   "GROUP BY model_version ORDER BY model_version")
    assert [tuple(r) for r in pdf.itertuples(index=False)] == [("v1", 6, D1), ("v2", 6, D1)]


# ---------------------------------------------------------------------------------------------
# the CLI: output files, plot, errors


def test_main_writes_csv_json_parquet_and_plot(spark, out_dir, tmp_path, capsys):
    base = ["--output", str(out_dir), "trend", "--model-version", "v1"]
    assert query.main(base + ["--out", str(tmp_path / "t.csv"), "--plot", str(tmp_path / "t.png")], spark=spark) == 0
    printed = capsys.readouterr().out
    assert "# trend by day, model v1" in printed and "2021-01-02" in printed and "0.4500" in printed
    csv = pd.read_csv(tmp_path / "t.csv")
    assert list(csv.columns) == ["dt", "tweets", "share_positive", "mean_score"]
    assert list(csv["dt"]) == ["2021-01-01", "2021-01-02", "2021-01-03"] and list(csv["tweets"]) == [3, 2, 1]
    assert csv["mean_score"].tolist() == pytest.approx([0.6, 0.45, 0.4], abs=1e-6)
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert query.main(base + ["--format", "json", "--out", str(tmp_path / "t.out")], spark=spark) == 0
    lines = [json.loads(x) for x in (tmp_path / "t.out").read_text().splitlines()]
    assert [(x["dt"], x["tweets"]) for x in lines] == [("2021-01-01", 3), ("2021-01-02", 2), ("2021-01-03", 1)]
    assert lines[1]["share_positive"] == pytest.approx(0.5)

    top_argv = ["--output", str(out_dir), "top", "--model-version", "v1", "--limit", "2", "--out", str(tmp_path / "t.json")]
    assert query.main(top_argv, spark=spark) == 0
    rows = [json.loads(x) for x in (tmp_path / "t.json").read_text().splitlines()]
    assert [(r["tweet_id"], r["created_at"], r["text"]) for r in rows] == [
        ("t1", "2021-01-01T08:00:00", "I love #Python!"), ("t4", "2021-01-02T10:00:00", "J'adore #pythonista")]

    assert query.main(["--output", str(out_dir), "compare", "--model-version", "v1", "--other-version", "v2",
                       "--format", "parquet", "--out", str(tmp_path / "c.pq")], spark=spark) == 0
    assert list(pd.read_parquet(tmp_path / "c.pq")["n"]) == [3, 2, 5]


def test_sql_out_collects_a_bounded_number_of_rows(spark, out_dir, tmp_path, capsys):
    """sql --out goes through the driver into one file: up to --max-out-rows rows; beyond, a clear
    error and no file, not a driver out of memory."""
    argv = ["--output", str(out_dir), "sql", "SELECT tweet_id, dt FROM scores ORDER BY model_version, tweet_id"]
    assert query.main(argv + ["--out", str(tmp_path / "all.csv"), "--max-out-rows", "12"], spark=spark) == 0
    assert len(pd.read_csv(tmp_path / "all.csv")) == 12
    assert query.main(argv + ["--out", str(tmp_path / "big.csv"), "--max-out-rows", "11"], spark=spark) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: the result has more than 11 rows") and "--out-dir" in err
    assert not (tmp_path / "big.csv").exists()
    # --out-dir: the whole result by Spark's writer, nothing through the driver
    for fmt in ("parquet", "csv", "json"):
        target = tmp_path / f"export-{fmt}"
        assert query.main(argv + ["--out-dir", str(target), "--format", fmt, "--max-out-rows", "1"], spark=spark) == 0
        assert "12" in capsys.readouterr().out
        back = spark.read.format(fmt).option("header", True).load(str(target))
        assert back.count() == 12 and sorted(back.columns) == ["dt", "tweet_id"]
    assert query.main(argv + ["--out-dir", str(tmp_path / "export-csv")], spark=spark) == 2
    assert "exists and is not an empty directory" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["trend", "--model-version", "v9"], "unknown --model-version 'v9'; present: v1, v2"),
    (["compare", "--other-version", "nope"], "unknown --other-version 'nope'"),
    (["trend", "--from", "2021-13-01"], "--from must be a date"),
    (["trend", "--hashtag", "#a b"], "--hashtag must be one tag"),
    (["top", "--out", "x.txt"], "cannot tell the format of --out"),
    (["sql", "SELECT * FROM nowhere"], "TABLE_OR_VIEW_NOT_FOUND"),
    (["sql", "SELEC 1"], "PARSE_SYNTAX_ERROR"),
])
def test_main_user_errors(spark, out_dir, capsys, argv, message):
    assert query.main(["--output", str(out_dir), *argv], spark=spark) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]


def test_main_missing_dir_no_scores_no_text(spark, out_dir, no_text_dir, tmp_path, capsys):
    assert query.main(["--output", str(tmp_path / "missing"), "trend"], spark=spark) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert query.main(["--output", str(tmp_path / "empty"), "sql", "SELECT 1"], spark=spark) == 2
    assert "error: no output tables under" in capsys.readouterr().err
    rejects_only = tmp_path / "r"
    spark.read.parquet(str(out_dir / "rejects" / "run_id=run-v1")).write.parquet(str(rejects_only / "rejects" / "run_id=a"))
    assert query.main(["--output", str(rejects_only), "top"], spark=spark) == 2
    assert "error: no scores table under" in capsys.readouterr().err
    assert query.main(["--output", str(no_text_dir), "trend", "--keyword", "x"], spark=spark) == 2
    assert "has no text column" in capsys.readouterr().err
    assert query.main(["--output", str(no_text_dir), "top", "--limit", "1"], spark=spark) == 0  # no text: fine
    assert "t1" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# the archive generator


def test_make_archive_read_back(tmp_path):
    from bench import make_archive
    from sentiment_core import readers

    counts = make_archive.generate(tmp_path / "arch", days=2, tweets_per_day=200, start="2021-03-04", seed=3,
                                   files_per_day=4)
    files = readers.list_input_files([str(tmp_path / "arch")])
    assert [f.split("arch/")[1] for f in files[:4]] == [
        "2021/03/04/00/00.json.bz2", "2021/03/04/06/00.json.bz2", "2021/03/04/12/00.json.bz2", "2021/03/04/18/00.json.bz2"]
    assert counts["files"] == len(files) == 8
    kinds = collections.Counter()
    tweets, deletes = {}, []
    for f in files:
        for kind, rec in readers.read_file(f):
            kinds[kind] += 1
            if kind == "tweet":
                assert rec["tweet_id"] not in tweets
                tweets[rec["tweet_id"]] = rec
            elif kind == "delete":
                deletes.append(rec)
    assert kinds == {"tweet": counts["tweets"], "delete": counts["deletes"]}
    assert counts["tweets"] == 400 and counts["deletes"] > 0
    per_day = collections.Counter(str(t["dt"]) for t in tweets.values())
    assert per_day == {d: c["tweets"] for d, c in counts["per_day"].items()} == {"2021-03-04": 200, "2021-03-05": 200}
    for tid, t in tweets.items():
        ms = int(t["created_at"].timestamp() * 1000)
        assert 0 <= (int(tid) >> 22) + 1288834974657 - ms < 1000
    assert 0 < counts["retweets"] == sum(t["is_retweet"] for t in tweets.values()) < 400
    # every delete refers to a generated tweet, deleted after it was posted; some from the day before
    assert all(d["tweet_id"] in tweets and d["deleted_at"] > tweets[d["tweet_id"]]["created_at"] for d in deletes)
    earlier = [d for d in deletes if tweets[d["tweet_id"]]["dt"] < d["deleted_at"].date()]
    assert len(earlier) == counts["deletes_of_earlier_days"] >= 1
    assert {d["deleted_at"].date() for d in earlier} == {dt.date(2021, 3, 5)}
    # the same arguments give the same files
    again = make_archive.generate(tmp_path / "again", days=1, tweets_per_day=20, start="2021-03-04", seed=3,
                                  files_per_day=1)
    first = make_archive.generate(tmp_path / "first", days=1, tweets_per_day=20, start="2021-03-04", seed=3,
                                  files_per_day=1, workers=1)
    assert again["tweets"] == first["tweets"] == 20
    import bz2

    assert bz2.open(tmp_path / "again/2021/03/04/00/00.json.bz2").read() == \
        bz2.open(tmp_path / "first/2021/03/04/00/00.json.bz2").read()


def test_make_archive_nested_statuses_renewed(tmp_path):
    import bz2

    from bench import make_archive

    make_archive.generate(tmp_path / "a", days=1, tweets_per_day=300, seed=0, files_per_day=1)
    objs = [json.loads(x) for x in bz2.open(tmp_path / "a/2021/01/01/00/00.json.bz2", "rt")]
    rts = [o for o in objs if "retweeted_status" in o]
    assert rts
    for o in rts:
        rs = o["retweeted_status"]
        assert rs["id_str"] == str(rs["id"]) != o["id_str"]
        assert make_archive.snowflake_ms(rs["id"]) < make_archive.snowflake_ms(o["id"])
        assert make_archive.v1_date(make_archive.snowflake_ms(rs["id"])) == rs["created_at"]
    for o in objs:
        if "quoted_status" in o:
            assert o["quoted_status_id_str"] == o["quoted_status"]["id_str"] == str(o["quoted_status_id"])
        if "timestamp_ms" in o:
            assert o["id"] >> 22 == int(o["timestamp_ms"]) - 1288834974657


def test_csv_export_doubles_quotes_and_hashtags_of_any_script(spark, out_dir, tmp_path):
    """--out-dir --format csv writes quotes in a text doubled, which Python's csv and pandas read back
    (Spark's default \\" broke both); a Thai or Hindi tag (vowel signs and tone marks, which
    Python's \\w leaves out) is one tag and matches as a whole token."""
    import csv

    argv = ["--output", str(out_dir), "sql",
            "SELECT tweet_id, concat('say \"hi\", \\\\ ', text) AS text FROM scores WHERE model_version = 'v2'"]
    assert query.main(argv + ["--out-dir", str(tmp_path / "csv"), "--format", "csv"], spark=spark) == 0
    rows = [r for f in sorted((tmp_path / "csv").glob("part-*.csv")) for r in csv.DictReader(f.open(encoding="utf-8"))]
    want = {t[0]: 'say "hi", \\ ' + t[4] for t in TWEETS if t[7] is not None}
    assert {r["tweet_id"]: r["text"] for r in rows} == want
    for tag in ("#หยิ่นวอร์", "हिन्दी", "#シングル"):
        assert query.QueryConfig(output=str(out_dir), report="trend", hashtag=tag).hashtag == tag
    texts = spark.createDataFrame([("ดู #หยิ่นวอร์ เลย",), ("#หยิ่นวอร์ส",), ("#हिन्दी दिवस",)], "text string")
    from pyspark.sql import functions as F

    assert texts.where(F.col("text").rlike(query.hashtag_pattern("#หยิ่นวอร์"))).count() == 1
    assert texts.where(F.col("text").rlike(query.hashtag_pattern("हिन्दी"))).count() == 1
    with pytest.raises(ValueError, match="one tag"):
        query.QueryConfig(output=str(out_dir), report="trend", hashtag="two words")
