"""A JSON array of tweets on one line (``json.dump(tweets, f)``): read by the readers, which stream
it in pieces, against reading it whole.

    python -m bench.one_line_json [--copies 2000]

Writes the v1 fixture's 20 tweets ``--copies`` times (distinct ids) as one JSON array on one
line, then reads it in two fresh processes, each reporting its wall time and peak RSS:

- ``readers.read_file``: every record, as a parse task reads the file;
- whole: the file read into memory and parsed at once (``orjson.loads``), then each tweet given
  to the same v1.1 parser; what reading a one-line document costs when it is held whole.

Both give the same number of tweets (checked). Prints both and their ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "archives" / "v1_sample.jsonl"

_CHILD = r"""
import json, resource, sys, time
from sentiment_core import readers
t = time.perf_counter()
if sys.argv[1] == "stream":
    n = sum(1 for kind, _ in readers.read_file(sys.argv[2]) if kind == "tweet")
else:
    import orjson
    with open(sys.argv[2], "rb") as f:
        values = orjson.loads(f.read())
    n = sum(1 for v in values for kind, _ in readers.parse_v1_line(orjson.dumps(v).decode(), sys.argv[2], 1)
            if kind == "tweet")
print(json.dumps({"tweets": n, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.one_line_json", description=__doc__.split("\n\n")[0])
    p.add_argument("--copies", type=int, default=2000)
    args = p.parse_args(argv)
    tweets = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()
              if line.strip() and '"delete"' not in line[:12]]
    work = Path(tempfile.mkdtemp(prefix="one_line_json_"))
    path = work / "tweets.json"
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        for i in range(args.copies):
            f.write(("," if i else "") + ",".join(json.dumps(dict(t, id_str=f"{t['id_str']}{i}"), ensure_ascii=False)
                                                  for t in tweets))
        f.write("]")
    print(f"{len(tweets) * args.copies} tweets, {path.stat().st_size / 1e6:.0f} MB on one line")
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    got = {}
    try:
        for way in ("stream", "whole"):
            out = subprocess.run([sys.executable, "-c", _CHILD, way, str(path)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            got[way] = json.loads(out.strip().splitlines()[-1])
            print(f"  {way:<7} {got[way]['seconds']:7.1f} s  peak RSS {got[way]['peak_rss_mb']:7.0f} MB  "
                  f"{got[way]['tweets']} tweets")
    finally:
        path.unlink()
        work.rmdir()
    assert got["stream"]["tweets"] == got["whole"]["tweets"] == len(tweets) * args.copies
    print(f"whole / stream: time {got['whole']['seconds'] / got['stream']['seconds']:.2f}x, "
          f"peak RSS {got['whole']['peak_rss_mb'] / got['stream']['peak_rss_mb']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
