"""Reports over the scoring jobs' output tables, with Spark SQL.

    spark-submit jobs/query.py --output DIR REPORT [options]
    python -m jobs.query --output DIR REPORT [options]

Reports:
    trend     per day (--by hour: per hour): tweets, share positive, mean score
    top       the most positive tweets (--negative: the most negative), --limit N (10)
    compare   --model-version A --other-version B, over the tweet ids both scored: n, label
              agreement, mean |score A - score B|, mean scores; per day and in all (dt "all")
    sql       "SELECT ..." over the views scores, rejects, deletes, run_log, runs (those present)

Filters (trend, top, compare): --model-version (default: the latest, by scored_at), --from and
--to (dt, inclusive), --user (screen name, any case), --lang, --keyword (substring of the text,
any case), --hashtag (#tag as a whole token, any case). The text filters need a scores table
written with --include-text. Filter values never become SQL text: they are literals of DataFrame
expressions, so a value such as O'Brien is matched as written.

Output: the result as a table on stdout; --out PATH [--format csv|json|parquet] also writes it
(json: one object per line; sql: at most --max-out-rows rows, collected through the driver);
sql --out-dir DIR writes a result of any size with Spark's writer instead (parquet by default);
trend --plot FILE.png draws share positive and tweets per period.
A user error (missing directory, no scores table, unknown model version, bad SQL) is one line
``error: ...`` on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import sys
import unicodedata
from dataclasses import dataclass, field

from sentiment_core.storage import is_uri

log = logging.getLogger("jobs.query")

REPORTS = ("trend", "top", "compare", "sql")
FORMATS = ("csv", "json", "parquet")


def _hashtag_word(tag: str) -> str | None:
    """The word of ``#tag``, or None when it is not one tag: letters, marks, digits and _ of any
    script (Python's ``\\w`` leaves out the vowel signs and tone marks of Thai or Hindi tags, which
    Twitter's hashtags and Java's ``(?U)\\w`` include)."""
    word = tag[1:] if tag.startswith("#") else tag
    ok = word and all(ch == "_" or unicodedata.category(ch)[0] in "LMN" for ch in word)
    return word if ok else None



@dataclass(frozen=True)
class QueryConfig:
    output: str = field(metadata={"help": "output directory of jobs/score.py or jobs/nightly.py"})
    report: str = field(metadata={"help": "|".join(REPORTS)})
    by: str = field(default="day", metadata={"help": "trend period: day|hour"})
    model_version: str | None = field(default=None, metadata={"help": "default: the latest (greatest scored_at)"})
    other_version: str | None = field(default=None, metadata={"help": "compare: the second model version"})
    date_from: dt.date | None = field(default=None, metadata={"help": "first dt, inclusive"})
    date_to: dt.date | None = field(default=None, metadata={"help": "last dt, inclusive"})
    user: str | None = field(default=None, metadata={"help": "screen name (any case)"})
    lang: str | None = field(default=None, metadata={"help": "tweet language code"})
    keyword: str | None = field(default=None, metadata={"help": "substring of the text (any case)"})
    hashtag: str | None = field(default=None, metadata={"help": "#tag as a whole token (any case)"})
    positive_label: str = field(default="positive", metadata={"help": "the label counted as positive"})
    limit: int = field(default=10, metadata={"help": "top: rows"})
    negative: bool = field(default=False, metadata={"help": "top: the most negative instead"})
    query: str | None = field(default=None, metadata={"help": "sql: the statement"})
    format: str | None = field(default=None, metadata={"help": "|".join(FORMATS) + " (default: from --out)"})
    out: str | None = field(default=None, metadata={"help": "write the result to this file"})
    plot: str | None = field(default=None, metadata={"help": "trend: PNG chart"})
    max_rows: int = field(default=200, metadata={"help": "rows shown on stdout"})
    max_out_rows: int = field(default=1_000_000, metadata={"help": "sql --out: rows the driver may collect"})
    out_dir: str | None = field(default=None, metadata={"help": "sql: the result written by Spark into this directory"})

    def __post_init__(self):
        if self.report not in REPORTS:
            raise ValueError(f"report must be one of {REPORTS}, got {self.report!r}")
        if self.by not in ("day", "hour"):
            raise ValueError(f"--by must be day or hour, got {self.by!r}")
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    object.__setattr__(self, name, dt.date.fromisoformat(value))
                except ValueError:
                    raise ValueError(f"--{name[5:]} must be a date YYYY-MM-DD, got {value!r}") from None
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"--from {self.date_from} is after --to {self.date_to}")
        if self.hashtag is not None and not _hashtag_word(self.hashtag):
            raise ValueError(f"--hashtag must be one tag of letters, digits and _ (like #python), got {self.hashtag!r}")
        if self.limit < 1 or self.max_rows < 1 or self.max_out_rows < 1:
            raise ValueError("--limit, --max-rows and --max-out-rows must be >= 1")
        if self.report == "compare" and not self.other_version:
            raise ValueError("compare needs --other-version B (and --model-version A, default the latest)")
        if self.report == "sql" and not (self.query or "").strip():
            raise ValueError('sql needs a statement: sql "SELECT ..."')
        if self.out_dir and self.out:
            raise ValueError("--out (one file, through the driver) and --out-dir (Spark's writer) exclude each other")
        if self.out_dir and self.format is None:
            object.__setattr__(self, "format", "parquet")
        if self.format is None and self.out:
            ext = os.path.splitext(self.out)[1].lstrip(".").lower()
            if ext not in FORMATS:
                raise ValueError(f"cannot tell the format of --out {self.out}; pass --format {'|'.join(FORMATS)}")
            object.__setattr__(self, "format", ext)
        if self.format is not None and (self.format not in FORMATS or not (self.out or self.out_dir)):
            raise ValueError(f"--format must be one of {FORMATS} and comes with --out PATH or --out-dir DIR")
        if self.plot and self.report != "trend":
            raise ValueError("--plot is for the trend report")

    @property
    def text_filter(self) -> bool:
        return self.keyword is not None or self.hashtag is not None


def parse_args(argv=None) -> QueryConfig:
    p = argparse.ArgumentParser(prog="jobs/query.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--output", required=True, help=QueryConfig.__dataclass_fields__["output"].metadata["help"])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--output", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # also after the report
    common.add_argument("--out", help="write the result to this file too")
    common.add_argument("--format", choices=FORMATS,
                        help="file format of --out (default: its extension) or of sql --out-dir (default parquet)")
    common.add_argument("--max-rows", type=int, default=200, help="rows shown on stdout (default 200)")
    common.add_argument("--max-out-rows", type=int, default=1_000_000,
                        help="sql --out: the most rows collected through the driver into the file (default 1,000,000)")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--model-version", help="default: the latest model version (greatest scored_at)")
    filters.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first dt, inclusive")
    filters.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last dt, inclusive")
    filters.add_argument("--user", help="screen name (any case)")
    filters.add_argument("--lang", help="language code, e.g. en")
    filters.add_argument("--keyword", help="substring of the text (any case)")
    filters.add_argument("--hashtag", help="#tag as a whole token (any case)")
    filters.add_argument("--positive-label", default="positive", help="the label counted as positive")
    sub = p.add_subparsers(dest="report", required=True, metavar="REPORT")
    t = sub.add_parser("trend", parents=[common, filters], help="per day: tweets, share positive, mean score")
    t.add_argument("--by", choices=("day", "hour"), default="day")
    t.add_argument("--plot", metavar="FILE.png", help="chart of share positive and tweets per period")
    top = sub.add_parser("top", parents=[common, filters], help="most positive (or --negative) tweets")
    top.add_argument("--limit", type=int, default=10)
    top.add_argument("--negative", action="store_true", help="the most negative tweets")
    c = sub.add_parser("compare", parents=[common, filters], help="two model versions on the same tweets")
    c.add_argument("--other-version", required=True, help="model version B (A: --model-version)")
    s = sub.add_parser("sql", parents=[common], help="any SQL over the views")
    s.add_argument("query", help='e.g. "SELECT dt, count(*) FROM scores GROUP BY dt"')
    s.add_argument("--out-dir", help="write the whole result with Spark's writer into this new directory "
                                      "(--format, default parquet), nothing through the driver: any size")
    return QueryConfig(**vars(p.parse_args(argv)))


# ---------------------------------------------------------------------------------------------
# transforms: DataFrame -> DataFrame


def model_versions(scores) -> list[str]:
    """Model versions present (from the file listing, no Spark job), sorted."""
    from urllib.parse import unquote

    found = set()
    for path in scores.inputFiles():
        for part in path.split("/"):
            if part.startswith("model_version="):
                found.add(unquote(part[len("model_version="):]))
    return sorted(found)


def latest_model_version(scores) -> str | None:
    """The model version with the greatest scored_at."""
    from pyspark.sql import functions as F

    row = (scores.groupBy("model_version").agg(F.max("scored_at").alias("t"))
           .orderBy(F.desc_nulls_last("t"), F.desc("model_version")).first())
    return row["model_version"] if row else None


def hashtag_pattern(tag: str) -> str:
    """Java regex for ``#tag`` as a whole token, any case (the tag is letters, marks, digits and _)."""
    word = _hashtag_word(tag)
    return r"(?iU)(?<![\w#])#\Q" + word + r"\E(?!\w)"


def filter_scores(scores, cfg: QueryConfig):
    """Rows of ``scores`` that pass the filters other than the model version. Every value is a
    literal in an expression, never SQL text."""
    from pyspark.sql import functions as F

    df = scores
    if cfg.date_from:
        df = df.where(F.col("dt") >= F.lit(cfg.date_from))
    if cfg.date_to:
        df = df.where(F.col("dt") <= F.lit(cfg.date_to))
    if cfg.user is not None:
        df = df.where(F.lower(F.col("user")) == F.lower(F.lit(cfg.user)))
    if cfg.lang is not None:
        df = df.where(F.col("lang") == F.lit(cfg.lang))
    if cfg.keyword is not None:
        df = df.where(F.lower(F.col("text")).contains(F.lower(F.lit(cfg.keyword))))
    if cfg.hashtag is not None:
        df = df.where(F.col("text").rlike(hashtag_pattern(cfg.hashtag)))
    return df


def trend(scores, by: str = "day", positive_label: str = "positive"):
    """Per dt (or hour of created_at): tweets, share_positive, mean_score, in time order."""
    from pyspark.sql import functions as F

    key = F.col("dt") if by == "day" else F.date_trunc("hour", F.col("created_at")).alias("hour")
    positive = (F.col("label") == F.lit(positive_label)).cast("double")
    return (scores.groupBy(key)
            .agg(F.count(F.lit(1)).alias("tweets"), F.avg(positive).alias("share_positive"),
                 F.avg("score").alias("mean_score"))
            .orderBy("dt" if by == "day" else "hour"))


def top(scores, limit: int = 10, negative: bool = False):
    """The ``limit`` highest (lowest) scores; ties by tweet_id."""
    from pyspark.sql import functions as F

    cols = [c for c in ("dt", "created_at", "tweet_id", "user", "lang", "score", "label", "text") if c in scores.columns]
    order = F.col("score").asc() if negative else F.col("score").desc()
    return scores.select(*cols).orderBy(order, F.col("tweet_id")).limit(limit)


def _latest_per_tweet(df):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("tweet_id").orderBy(F.desc("scored_at"), F.desc("run_id"))
    return df.withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") == 1).drop("_rn")


def compare(scores, version_a: str, version_b: str):
    """Per dt, over the tweet ids both versions scored: n, agreement (share of equal labels),
    mean_abs_diff (mean |score A - score B|), mean_score_a, mean_score_b. A tweet scored twice
    by one version counts once (its latest score)."""
    from pyspark.sql import functions as F

    def side(version, suffix):
        part = _latest_per_tweet(scores.where(F.col("model_version") == F.lit(version)))
        cols = [F.col("label").alias(f"label_{suffix}"), F.col("score").alias(f"score_{suffix}")]
        return part.select("tweet_id", *(["dt"] if suffix == "a" else []), *cols)

    both = side(version_a, "a").join(side(version_b, "b"), "tweet_id")
    aggs = [F.count(F.lit(1)).alias("n"),
            F.avg((F.col("label_a") == F.col("label_b")).cast("double")).alias("agreement"),
            F.avg(F.abs(F.col("score_a") - F.col("score_b"))).alias("mean_abs_diff"),
            F.avg("score_a").alias("mean_score_a"), F.avg("score_b").alias("mean_score_b")]
    return both.groupBy("dt").agg(*aggs).orderBy("dt")


def with_total(per_day):
    """Per-day compare rows (pandas) + a last row, dt "all", over all days: every column but n
    is a mean, so the total is the n-weighted mean of the days (exact, one Spark job)."""
    import pandas as pd

    out = per_day.copy()
    out["dt"] = out["dt"].astype(str)
    n = out["n"].sum()
    total = {"dt": "all", "n": n}
    for c in out.columns[2:]:
        total[c] = (out[c] * out["n"]).sum() / n if n else float("nan")
    out = pd.concat([out, pd.DataFrame([total])], ignore_index=True)
    out["n"] = out["n"].astype("int64")
    return out


# ---------------------------------------------------------------------------------------------
# reading and writing


def _scores(cfg: QueryConfig, scores):
    if scores is None:
        raise ValueError(f"no scores table under {cfg.output} (expected {cfg.output}/scores/model_version=V/dt=D/)")
    if cfg.text_filter and "text" not in scores.columns:
        raise ValueError("--keyword and --hashtag need the tweet text, and this scores table has no text column; "
                         "score with --include-text to keep it")
    return scores


def _version(scores, available: list[str], requested: str | None, flag: str) -> str:
    if not available:
        raise ValueError("the scores table is empty")
    if requested is None:
        return latest_model_version(scores)
    if requested not in available:
        raise ValueError(f"unknown {flag} {requested!r}; present: {', '.join(available)}")
    return requested


def run(cfg: QueryConfig, spark):
    """The report as (pandas DataFrame, a title line)."""
    from pyspark.sql import functions as F

    from sentiment_core.tables import read_table, register_tables

    if cfg.report == "sql":
        views = register_tables(spark, cfg.output)
        if not views:
            raise ValueError(f"no output tables under {cfg.output}")
        df = spark.sql(cfg.query)
        if cfg.out_dir:
            return export(df, cfg.out_dir, cfg.format), f"sql over {', '.join(views)}, written to {cfg.out_dir}"
        if not cfg.out:
            return df.limit(cfg.max_rows + 1).toPandas(), f"sql over {', '.join(views)}"
        # the result goes through this driver into one file: a bounded number of rows, or a clear
        # error rather than a driver out of memory
        pdf = df.limit(cfg.max_out_rows + 1).toPandas()
        if len(pdf) > cfg.max_out_rows:
            raise ValueError(f"the result has more than {cfg.max_out_rows:,} rows, more than --out collects through the "
                             "driver into one file (--max-out-rows): write it with Spark's writer with --out-dir DIR")
        return pdf, f"sql over {', '.join(views)}"

    scores = _scores(cfg, read_table(spark, cfg.output, "scores"))
    available = model_versions(scores)
    version = _version(scores, available, cfg.model_version, "--model-version")
    filtered = filter_scores(scores, cfg)
    if cfg.report == "compare":
        other = _version(scores, available, cfg.other_version, "--other-version")
        return with_total(compare(filtered, version, other).toPandas()), f"compare A = {version}, B = {other}"
    mine = filtered.where(F.col("model_version") == F.lit(version))
    if cfg.report == "trend":
        return trend(mine, cfg.by, cfg.positive_label).toPandas(), f"trend by {cfg.by}, model {version}"
    return top(mine, cfg.limit, cfg.negative).toPandas(), \
        f"top {cfg.limit} {'negative' if cfg.negative else 'positive'}, model {version}"


def export(df, out_dir: str, fmt: str):
    """The whole result written by Spark into the new directory ``out_dir`` (csv with a header,
    json lines with nulls kept, parquet), counted as it is written; returns a one-row summary."""
    import pandas as pd
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from sentiment_core.storage import spark_path

    if not is_uri(out_dir) and os.path.exists(out_dir):
        if not os.path.isdir(out_dir) or os.listdir(out_dir):
            raise ValueError(f"--out-dir {out_dir} exists and is not an empty directory; choose a new one")
        os.rmdir(out_dir)  # an empty one is taken: Spark's writer refuses any path that exists
    rows = Observation("exported")
    writer = df.observe(rows, F.count(F.lit(1)).alias("rows")).write.mode("errorifexists").format(fmt)
    if fmt == "csv":  # quotes in a text doubled (RFC 4180), as every CSV reader expects, not Spark's \"
        writer = writer.option("header", True).option("escape", '"')
    elif fmt == "json":
        writer = writer.option("ignoreNullFields", False)
    writer.save(spark_path(out_dir))  # a local folder, not one of the cluster's default file system
    return pd.DataFrame({"rows": [rows.get["rows"]], "format": [fmt], "directory": [out_dir]})


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def write_result(pdf, path: str, fmt: str) -> None:
    """One file: csv (header), json (one object per line, ISO dates) or parquet."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if fmt == "parquet":
        pdf.to_parquet(path, index=False)
        return
    text = pdf.copy()
    for c in text.columns:
        if text[c].dtype == object or str(text[c].dtype).startswith("datetime"):
            text[c] = [_iso(v) if v is not None and v == v else None for v in text[c].tolist()]
    if fmt == "csv":
        text.to_csv(path, index=False)
    else:
        with open(path, "w", encoding="utf-8") as f:
            for row in text.to_dict(orient="records"):
                f.write(json.dumps({k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()},
                                   ensure_ascii=False, default=str) + "\n")


def plot_trend(pdf, path: str, title: str) -> None:
    """Share positive (line, left axis) and tweets (bars, right axis) per period, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import matplotlib.dates as mdates
    import pandas as pd

    by_day = pdf.columns[0] == "dt"
    x = pd.to_datetime(pdf[pdf.columns[0]])
    fig, ax = plt.subplots(figsize=(10, 4.5))
    try:
        counts = ax.twinx()
        counts.bar(x, pdf["tweets"], color="lightgray", label="tweets", width=0.8 if by_day else 0.8 / 24)
        counts.set_ylabel("tweets")
        ax.set_zorder(counts.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot(x, pdf["share_positive"], marker="o", color="tab:blue", label="share positive")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d" if by_day else "%Y-%m-%d %H:%M"))
        if by_day and len(x) <= 31:
            ax.set_xticks(x)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share positive")
        ax.set_title(title)
        fig.autofmt_xdate()
        fig.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def show(pdf, title: str, max_rows: int) -> str:
    shown = pdf.head(max_rows)
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}") if len(pdf) else "(no rows)"
    more = f"\n... {len(pdf) - max_rows} more rows (--out writes them all)" if len(pdf) > max_rows else ""
    return f"# {title}\n{text}{more}"


def main(argv=None, spark=None) -> int:
    """CLI entry; ``spark``: a session to use (and leave running), as tests pass."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pyspark.errors import AnalysisException, ParseException

    own = spark is None
    try:
        cfg = parse_args(argv)
        if not is_uri(cfg.output) and not os.path.isdir(cfg.output):
            raise ValueError(f"--output {cfg.output} is not a directory (expected the output of jobs/score.py)")
        log.info("query config %s", json.dumps(dataclasses.asdict(cfg), default=str))
        if own:
            from sentiment_core.spark import get_session

            spark = get_session("tweet-sentiment-query")
        try:
            pdf, title = run(cfg, spark)
        finally:
            if own:
                spark.stop()
        print(show(pdf, title, cfg.max_rows))
        if cfg.out:
            write_result(pdf, cfg.out, cfg.format)
            log.info("wrote %d rows to %s (%s)", len(pdf), cfg.out, cfg.format)
        if cfg.plot:
            plot_trend(pdf, cfg.plot, title)
            log.info("wrote the chart %s", cfg.plot)
    except (ValueError, FileNotFoundError, AnalysisException, ParseException) as e:
        print(f"error: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
