"""What each parse task pays to unpickle the parse function, as the number of input files grows.

    python -m bench.plan_pickle [--files 1440 43200 525600] [--files-per-task 4] [--runs 5]

Every Spark task unpickles its Python function, and the parse function carries the whole parse
plan. For the file count of a day, a month and a year of the Internet Archive grab (one minute
file each), it prints the pickled size and the median time to unpickle the function, with the plan
as ``TaskItems`` (one bytes object of per-task pickles, what ``read_records`` ships) and, in the
same run, as Python objects (a list of every task's units, as before).
"""
from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import time


def plan(files: int, per_task: int) -> list[list[tuple]]:
    units = [(f"/archive/2021/{i // 43200 % 12 + 1:02d}/{i // 1440 % 30 + 1:02d}/{i // 60 % 24:02d}/{i % 60:02d}.json.bz2",
              "auto", None, 0, None) for i in range(files)]
    return [units[i:i + per_task] for i in range(0, files, per_task)]


def as_objects(tasks):
    def parse(task):  # the function as it was: the list itself in its closure
        return tasks[task]
    return parse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plan_pickle", description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, nargs="+", default=[1440, 43200, 525600])
    p.add_argument("--files-per-task", type=int, default=4)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    from pyspark import cloudpickle

    from sentiment_core.spark import parse_units

    rows = []
    for n in args.files:
        tasks = plan(n, args.files_per_task)
        row = {"files": n, "tasks": len(tasks)}
        for name, fn in (("objects", as_objects(tasks)), ("task_items", parse_units(tasks))):
            blob = cloudpickle.dumps(fn)
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                pickle.loads(blob)
                times.append(time.perf_counter() - t)
            row[f"{name}_mb"] = round(len(blob) / 1e6, 2)
            row[f"{name}_ms_per_task"] = round(statistics.median(times) * 1e3, 2)
        rows.append(row)
    print("| files | tasks | pickled MB | unpickle per task, as objects (ms) | as TaskItems (ms) | ratio | CPU of all tasks, objects / TaskItems |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        total = lambda k: r["tasks"] * r[k] / 1e3 / 60  # noqa: E731 - minutes
        print(f"| {r['files']:,} | {r['tasks']:,} | {r['task_items_mb']} | {r['objects_ms_per_task']} | "
              f"{r['task_items_ms_per_task']} | {r['objects_ms_per_task'] / r['task_items_ms_per_task']:.0f}x | "
              f"{total('objects_ms_per_task'):.1f} / {total('task_items_ms_per_task'):.1f} min |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
