"""Print the label and positive probability of each text.

    python -m training.predict --model ARTIFACT "I don't love this weather so much" ...
    cat texts.txt | python -m training.predict --model ARTIFACT      (one text per line)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from sentiment_core.artifact import ArtifactError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model artifact directory")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    p.add_argument("texts", nargs="*", help="texts to score (default: stdin, one per line)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # bytes that are not UTF-8 (a latin-1 file piped in, an argument from a latin-1 terminal) are
    # replaced, not passed on as the lone surrogates Python decodes them to
    texts = [os.fsencode(t).decode("utf-8", "replace") for t in args.texts] or \
        [line.decode("utf-8", "replace").rstrip("\r\n") for line in sys.stdin.buffer if line.strip()]
    if not texts:
        print("error: no texts given (pass them as arguments or on stdin)", file=sys.stderr)
        return 2
    try:
        from sentiment_core.scorer import Scorer

        scorer = Scorer(args.model)
    except ArtifactError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    scores, labels = scorer.score(texts)
    for text, s, lab in zip(texts, scores, labels):
        if args.json:
            print(json.dumps({"text": text, "label": str(lab), "score": round(float(s), 6)}, ensure_ascii=False))
        else:
            print(f"{lab}\t{s:.4f}\t{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
