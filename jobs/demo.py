"""The end-to-end demo on the bundled real data, on the embedded default (local Spark):

1. fine-tune the packaged MiniLM on a sample of the bundled Sentiment140 tweets (training.train),
2. print predictions for a few sentences (training.predict),
3. score the bundled Twitter v1.1 archive minute file on Spark (jobs.score),
4. show a small query over the output table.

    python -m jobs.demo --output out/demo [--max-rows 1500] [--epochs 1]

Re-running reuses the finished training run and replaces the scored partitions.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
SENTENCES = ["I don't love this weather so much", "best concert of my life, thank you all!",
             "my flight got cancelled again", "just had lunch"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--output", default="out/demo")
    p.add_argument("--max-rows", type=int, default=1500)
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.output)

    from training import predict, train

    print(f"== 1. training on {args.max_rows} bundled Sentiment140 tweets (MiniLM, {args.epochs} epoch(s), CPU is slow: a few minutes)", flush=True)
    train_argv = ["--data", str(SAMPLE / "sentiment140_sample.csv"), "--output-dir", str(out / "train"),
                  "--max-rows", str(args.max_rows), "--epochs", str(args.epochs)]
    rc = train.main(train_argv)
    if rc and (out / "train" / "run_config.json").exists():
        # the demo's own training dir holds a run it cannot resume (other settings, or a run of an
        # older version of the project): it is the demo's to replace
        print(f"== {out / 'train'} holds a training run with other settings: training again", flush=True)
        shutil.rmtree(out / "train")
        rc = train.main(train_argv)
    if rc:
        return rc
    artifact = out / "train" / "artifact"
    meta = json.loads((artifact / "metadata.json").read_text())
    print(f"model {meta['model_version']}: test accuracy {meta['metrics']['test']['accuracy']:.3f} "
          f"on {meta['metrics']['test']['n']} held-out tweets", flush=True)

    print("== 2. predictions", flush=True)
    predict.main(["--model", str(artifact), *SENTENCES])

    print("== 3. scoring the bundled Twitter v1.1 archive on Spark (local[*])", flush=True)
    from jobs import score
    from sentiment_core.spark import get_session
    from sentiment_core.storage import spark_path

    spark = get_session("tweet-sentiment-demo")
    try:
        summary = score.run(score.parse_args(["--input", str(SAMPLE / "archive"), "--model", str(artifact),
                                              "--output", str(out / "scores"), "--include-text"]), spark=spark)
        print(json.dumps({k: summary[k] for k in ("records_read", "scored", "rejected", "delete_notices",
                                                  "filtered_duplicate", "wall_seconds", "tweets_per_second", "reconciled")}))
        print("== 4. query: share positive by language (top 6 languages)", flush=True)
        # this model's scores only: a re-trained demo model adds a model_version beside the old one
        table = spark.read.parquet(spark_path(out / "scores" / "scores"))
        table.where(table["model_version"] == summary["model_version"]).createOrReplaceTempView("scores")
        spark.sql("""
            SELECT lang, count(*) AS tweets, round(avg(CAST(label = 'positive' AS INT)), 3) AS share_positive,
                   round(avg(score), 3) AS mean_score
            FROM scores GROUP BY lang ORDER BY tweets DESC LIMIT 6""").show()
        spark.sql("""SELECT label, round(score, 3) AS score, substr(text, 1, 80) AS text FROM scores
                     WHERE lang = 'en' AND NOT is_retweet ORDER BY score DESC LIMIT 3""").show(truncate=False)
    finally:
        spark.stop()
    print(f"output: {out.resolve() / 'scores'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
