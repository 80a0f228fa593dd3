"""Labelled-data readers on hand-made bytes with exact expected counts and texts."""
from __future__ import annotations

from pathlib import Path

import pytest

from sentiment_core.labelled import ReadStats, detect_format, read_labelled
from tests.conftest import FIXTURES

S140_BYTES = (
    b'"0","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","alice","I said "no", twice, ok?"\n'
    b'"4","2","Mon Apr 06 22:19:49 PDT 2009","NO_QUERY","bob","love this \xf0\x9f\x98\x8d caf\xc3\xa9"\n'
    b'"4","3","Mon Apr 06 22:19:53 PDT 2009","NO_QUERY","carol","bad bytes \xff\xfe here"\n'
    b'"2","4","Mon Apr 06 22:19:57 PDT 2009","NO_QUERY","dave","meh, neutral"\n'
    b'"0","5","Mon Apr 06"\n'
    b'"0","6","Mon Apr 06 22:20:00 PDT 2009","NO_QUERY","erin","   "\n'
    b'\n'
    b'"4","7","Mon Apr 06 22:20:03 PDT 2009","NO_QUERY","fay","the end"\r\n'
)


def test_sentiment140_bytes(tmp_path):
    f = tmp_path / "s140.csv"
    f.write_bytes(S140_BYTES)
    assert detect_format(str(f)) == "sentiment140"
    stats = ReadStats()
    chunks = list(read_labelled(str(f), "sentiment140", stats))
    ids = [i for c in chunks for i in c.ids]
    texts = [t for c in chunks for t in c.texts]
    labels = [y for c in chunks for y in c.labels]
    assert ids == ["1", "2", "3", "7"]
    assert labels == [0, 1, 1, 1]
    assert texts[0] == 'I said "no", twice, ok?'
    assert texts[1] == "love this \U0001F60D café"  # UTF-8 decoded, not latin-1 garbled
    assert texts[2] == "bad bytes \ufffd\ufffd here"  # invalid bytes replaced, rest intact
    assert texts[3] == "the end"
    assert stats.rows == 7 and stats.kept == 4
    assert dict(stats.dropped) == {"neutral": 1, "bad_field_count": 1, "empty_text": 1}
    assert stats.invalid_utf8 == 1


def test_sentiment140_texts_written_on_several_lines_are_one_row(tmp_path):
    """A CSV writer quotes a text with line breaks over several lines: one row, not two bad ones."""
    d = "Mon Apr 06 22:19:45 PDT 2009"
    f = tmp_path / "own.csv"
    f.write_bytes((f'"4","1","{d}","NO_QUERY","u","so\r\n\r\nhappy"\r\n"0","2","{d}","NO_QUERY","u","sad"\r\n'
                   f'"0","3","{d}","NO_QUERY","u","never\r\nclosed\r\n"4","4","{d}","NO_QUERY","u","ok"\r\n').encode())
    assert detect_format(str(f)) == "sentiment140"  # told by its first record, over two lines here
    stats = ReadStats()
    chunks = list(read_labelled(str(f), "auto", stats))
    assert [i for c in chunks for i in c.ids] == ["1", "2", "4"]
    assert [t for c in chunks for t in c.texts][0] == "so\r\n\r\nhappy"
    assert stats.rows == 4 and stats.kept == 3 and dict(stats.dropped) == {"bad_field_count": 1}


@pytest.mark.parametrize("name", ["s140.csv.gz", "s140.csv.bz2", "s140.csv.xz", "s140.csv.zst", "s140_gz_named.csv"])
def test_compressed_sentiment140_and_semeval_read_as_the_plain_files(tmp_path, name):
    """The full Sentiment140 CSV is 238 MB: users keep it compressed. Told by the first bytes."""
    import bz2
    import gzip
    import lzma

    import zstandard

    compress = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
                ".zst": zstandard.ZstdCompressor().compress, ".csv": gzip.compress}[Path(name).suffix]
    semeval = b"11\tpositive\tgreat day\t\n22\tneutral\tjust a day\n33\tnegative\tfirst line\nsecond line\n"
    for data, fmt in ((S140_BYTES, "sentiment140"), (semeval, "semeval")):
        plain, packed = tmp_path / f"plain.{fmt}", tmp_path / f"{fmt}-{name}"
        plain.write_bytes(data)
        packed.write_bytes(compress(data))
        assert detect_format(str(packed)) == fmt
        want, got = ReadStats(), ReadStats()
        assert [vars(c) | {"source": None} for c in read_labelled(str(packed), "auto", got)] == \
            [vars(c) | {"source": None} for c in read_labelled(str(plain), "auto", want)]
        assert got.as_dict() == want.as_dict() and got.kept


def test_archives_kaggle_one_file_zip_and_a_named_member_of_sentiment140s_zip(tmp_path):
    """Kaggle's Sentiment140 download is a zip of the one CSV: read as that file. Sentiment140's own
    trainingandtestdata.zip holds two: one is named ARCHIVE!/MEMBER, the zip alone is refused with
    its members named and the form to use; a table in a tar (a .tsv there) keeps its delimiter."""
    import io
    import tarfile
    import zipfile

    plain = tmp_path / "training.1600000.processed.noemoticon.csv"
    plain.write_bytes(S140_BYTES)
    want = ReadStats()
    expected = [vars(c) for c in read_labelled(str(plain), "auto", want)]
    kaggle = tmp_path / "archive.zip"
    with zipfile.ZipFile(kaggle, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(plain.name, S140_BYTES)
        z.writestr("__MACOSX/._" + plain.name, b"\x00\x05")  # hidden: not a file of the data
    both = tmp_path / "trainingandtestdata.zip"
    with zipfile.ZipFile(both, "w") as z:
        z.writestr(plain.name, S140_BYTES)
        z.writestr("testdata.manual.2009.06.14.csv", S140_BYTES[: len(S140_BYTES) // 2])
    for path in (str(kaggle), f"{both}!/{plain.name}"):
        got = ReadStats()
        assert detect_format(path) == "sentiment140"
        assert [vars(c) for c in read_labelled(path, "auto", got)] == expected and got.as_dict() == want.as_dict()
    with pytest.raises(ValueError, match=r"archive of 2 files.*training.1600000.processed.noemoticon.csv.*"
                                         r"--data .*trainingandtestdata.zip!/training"):
        list(read_labelled(str(both)))
    with pytest.raises(ValueError, match="has no file 'test.csv'"):
        list(read_labelled(f"{both}!/test.csv"))
    with pytest.raises(FileNotFoundError, match="data file not found"):
        list(read_labelled(str(tmp_path / "missing.zip!/x.csv")))
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(both.read_bytes()[:40])
    with pytest.raises(ValueError, match="cannot be read.*extract the file"):
        list(read_labelled(str(damaged)))

    tsv = b"tweet\tsentiment\ngood, very good\tpositive\nawful\tnegative\n"
    tar = tmp_path / "tables.tar"
    with tarfile.open(tar, "w") as t:
        info = tarfile.TarInfo("data/t.tsv")
        info.size = len(tsv)
        t.addfile(info, io.BytesIO(tsv))
    got = [(x, y) for c in read_labelled(str(tar), "table", text_col="tweet", label_col="sentiment")
           for x, y in zip(c.texts, c.labels)]
    assert got == [("good, very good", 1), ("awful", 0)]


def test_table_csv_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = tmp_path / "t.csv"
    csv.write_text('tweet,sentiment\n"good, very good",positive\nawful,negative\nok,neutral\n"x",??\n')
    stats = ReadStats()
    got = [(t, y) for c in read_labelled(str(csv), "table", stats, text_col="tweet", label_col="sentiment") for t, y in zip(c.texts, c.labels)]
    assert got == [("good, very good", 1), ("awful", 0)]
    assert dict(stats.dropped) == {"neutral": 1, "bad_label": 1}
    pq.write_table(pa.table({"t": ["yay", None, "boo"], "y": [4, 0, 0], "id": ["a", "b", "c"]}), tmp_path / "t.parquet")
    stats = ReadStats()
    chunks = list(read_labelled(str(tmp_path / "t.parquet"), "auto", stats, text_col="t", label_col="y", id_col="id"))
    assert [c.ids for c in chunks] == [["a", "c"]] and [c.labels for c in chunks] == [[1, 0]]
    assert dict(stats.dropped) == {"empty_text": 1}
    with pytest.raises(ValueError, match="not found"):
        list(read_labelled(str(csv), "table", text_col="body", label_col="sentiment"))


def test_semeval_quirks(tmp_path):
    f = tmp_path / "semeval.txt"
    f.write_text("11\tpositive\tgreat day\t\n22\tneutral\tjust a day\n33\tnegative\tfirst line\nsecond line\n44\tobjective\tfacts\n")
    stats = ReadStats()
    chunks = list(read_labelled(str(f), "auto", stats))
    assert [c.ids for c in chunks] == [["11", "33"]]
    assert chunks[0].texts == ["great day", "first line\nsecond line"]
    assert dict(stats.dropped) == {"neutral": 2}


def test_wrong_format_is_one_clear_error(tmp_path):
    f = tmp_path / "notcsv.csv"
    f.write_text("hello\nworld\n")
    with pytest.raises(ValueError, match="no row could be read as sentiment140"):
        list(read_labelled(str(f), "sentiment140"))


def test_real_sentiment140_counts():
    from tests.conftest import shared_data

    stats = ReadStats()
    n = sum(len(c.ids) for c in read_labelled(str(shared_data("sentiment140", "training.44k.csv")), "auto", stats))
    assert n == 44_694 and stats.rows == 44_694 and not stats.dropped


def test_prepare_drops_holdout_ids(tmp_path):
    """Tweets of an evaluation file never enter any split, and the drop is counted."""
    from training.data import Source, prepare, read_split

    src = FIXTURES / "sentiment140_300.csv"
    lines = src.read_text(encoding="utf-8").splitlines()
    held_ids = [line.split('","')[1] for line in lines[:40] if line.startswith(('"0"', '"4"'))]
    holdout = tmp_path / "holdout.tsv"  # the SemEval layout: id<TAB>label<TAB>text
    holdout.write_text("".join(f"{i}\tpositive\theld out tweet {i}\n" for i in held_ids))
    base = prepare([Source(str(src))], tmp_path / "a", seed=42)
    held = prepare([Source(str(src))], tmp_path / "b", seed=42, holdout=[Source(str(holdout))])
    assert held["dropped"]["in_holdout"] == len(set(held_ids)) > 0
    assert held["kept"] == base["kept"] - len(set(held_ids))
    kept_ids = set()
    for split in ("train", "validation", "test"):
        ids, _, _ = read_split(tmp_path / "b", split)
        kept_ids |= set(ids)
    assert kept_ids.isdisjoint(held_ids)
    assert len(kept_ids) == held["kept"]


def test_labels_0_1_2_are_refused_as_ambiguous_unless_mapped(tmp_path):
    """tweet_eval's sentiment labels are 0 negative, 1 neutral, 2 positive: read with the fixed
    values (1 positive, 2 neutral) they would train a model on swapped labels without a word."""
    from sentiment_core.labelled import parse_label_map
    from training.train import parse_args

    csv = tmp_path / "tweet_eval.csv"
    csv.write_text("text,label\nawful day,0\njust a day,1\nlovely day,2\n")
    with pytest.raises(ValueError, match="ambiguous.*--label-map 0=negative,1=neutral,2=positive"):
        list(read_labelled(str(csv), "table"))
    stats = ReadStats()
    mapped = parse_label_map("0=negative, 1=Neutral ,2=positive")
    got = [(t, y) for c in read_labelled(str(csv), "table", stats, label_map=mapped) for t, y in zip(c.texts, c.labels)]
    assert got == [("awful day", 0), ("lovely day", 1)] and dict(stats.dropped) == {"neutral": 1}
    for bad in ("0=bad", "0negative", "0=negative,1"):
        with pytest.raises(ValueError, match="expected VALUE=negative"):
            parse_label_map(bad)
    with pytest.raises(ValueError, match="expected VALUE=negative"):
        parse_args(["--data", str(csv), "--output-dir", str(tmp_path / "run"), "--label-map", "2=good"])
    assert not (tmp_path / "run").exists()
    # binary 0/1 and Sentiment140's 0/2/4 stay as they are
    binary = tmp_path / "binary.csv"
    binary.write_text("text,label\nawful day,0\nlovely day,1\n")
    assert [c.labels for c in read_labelled(str(binary), "table")] == [[0, 1]]


def test_label_schemes_the_fixed_values_would_misread(tmp_path):
    """-1/0/1 (0 is neutral there) is refused with the map to give; a map says what every value
    means (a value it lacks is dropped and counted, not read by the fixed values); whole floats
    (what pandas writes for an integer column with gaps) are their integers."""
    from sentiment_core.labelled import parse_label_map

    three = tmp_path / "m101.csv"
    three.write_text("text,label\ngreat flight,1\nok flight,0\nawful flight,-1\n")
    with pytest.raises(ValueError, match="--label-map -1=negative,0=neutral,1=positive"):
        list(read_labelled(str(three), "table"))
    stats = ReadStats()
    got = [(t, y) for c in read_labelled(str(three), "table", stats, label_map=parse_label_map("-1=negative,0=neutral,1=positive"))
           for t, y in zip(c.texts, c.labels)]
    assert got == [("great flight", 1), ("awful flight", 0)] and dict(stats.dropped) == {"neutral": 1}
    stats = ReadStats()
    got = [y for c in read_labelled(str(three), "table", stats, label_map=parse_label_map("-1=negative,1=positive"))
           for y in c.labels]
    assert got == [1, 0] and dict(stats.dropped) == {"unmapped_label": 1}
    floats = tmp_path / "floats.csv"
    floats.write_text("text,label\ngood,1.0\nbad,0.0\nmeh,\nodd,0.5\n")
    stats = ReadStats()
    got = [y for c in read_labelled(str(floats), "table", stats) for y in c.labels]
    assert got == [1, 0] and dict(stats.dropped) == {"bad_label": 2}
    assert stats.examples["bad_label"].startswith("label ")  # the example names the value, not only the text


def test_table_bytes_that_are_not_utf8_and_parquet_without_its_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cp1252 = tmp_path / "excel.csv"  # an Excel export: cp1252, a column the reader does not need
    cp1252.write_bytes("id,text,label,place\n1,caf\u00e9 \u2019s good,positive,Z\u00fcrich\n2,bad,negative,x\n".encode("cp1252"))
    stats = ReadStats()
    chunks = list(read_labelled(str(cp1252), "auto", stats, id_col="id"))
    assert [c.ids for c in chunks] == [["1", "2"]] and chunks[0].texts == ["caf\ufffd \ufffds good", "bad"]
    assert stats.invalid_utf8 == 1 and not stats.dropped
    noname = tmp_path / "download"  # a Parquet file saved without its extension
    pq.write_table(pa.table({"text": ["yay", "boo"], "label": [1, 0]}), noname)
    assert detect_format(str(noname)) == "table"
    assert [c.labels for c in read_labelled(str(noname))] == [[1, 0]]


def test_byte_order_mark_cut_files_and_unclosed_quotes(tmp_path):
    import gzip

    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + S140_BYTES)
    plain = tmp_path / "plain.csv"
    plain.write_bytes(S140_BYTES)
    assert detect_format(str(bom)) == "sentiment140"
    a, b = ReadStats(), ReadStats()
    assert [c.ids for c in read_labelled(str(bom), "auto", a)] == [c.ids for c in read_labelled(str(plain), "auto", b)]
    assert a.as_dict() == b.as_dict()
    sem = tmp_path / "semeval.txt"
    sem.write_bytes(b"\xef\xbb\xbf11\tpositive\tgreat day\n22\tnegative\tbad day\n")
    assert [c.ids for c in read_labelled(str(sem))] == [["11", "22"]]
    cut = tmp_path / "cut.csv.gz"
    packed = gzip.compress(S140_BYTES * 50)
    cut.write_bytes(packed[:len(packed) // 2])
    with pytest.raises(ValueError, match="cut.csv.gz: the file ends early or is damaged"):
        list(read_labelled(str(cut)))
    import lzma

    damaged = tmp_path / "damaged.csv.xz"  # LZMAError, not an OSError: it used to be a traceback
    packed = bytearray(lzma.compress(S140_BYTES * 50))
    packed[len(packed) // 2:len(packed) // 2 + 8] = b"\xff" * 8
    damaged.write_bytes(bytes(packed))
    with pytest.raises(ValueError, match="damaged.csv.xz: the file ends early or is damaged"):
        list(read_labelled(str(damaged)))
    quotes = tmp_path / "quotes.csv"  # a quote never closed runs on to the end: its lines are counted, not lost
    quotes.write_text('text,label\ngood morning,positive\n"unclosed starts here,negative\nhate mondays,negative\n'
                      'sunny again,positive\n')
    stats = ReadStats()
    assert [c.texts for c in read_labelled(str(quotes), "table", stats)] == [["good morning"]]
    assert stats.rows == 4 and dict(stats.dropped) == {"bad_field_count": 3}


def test_semeval_text_as_the_tweet_reads():
    """The gold files keep some texts CSV-quoted and JSON-escaped (made-up texts in their shapes)."""
    from sentiment_core.labelled import semeval_text

    assert semeval_text('"Excited to read ""The Book"" on Tuesday."\t') == 'Excited to read "The Book" on Tuesday.'
    assert semeval_text('"It read: \\""Standing up since Sunday\\"""') == 'It read: "Standing up since Sunday"'
    assert semeval_text("Plus\\u002c tomorrow y\\u2019all \\ud83d\\ude00") == "Plus, tomorrow y\u2019all \U0001F600"
    assert semeval_text('"quoted" she said "twice"') == '"quoted" she said "twice"'  # a lone quote inside: a tweet
    assert semeval_text("lone \\ud83d half") == "lone \ufffd half"


def test_prepare_drops_holdout_by_text_where_tables_have_no_ids(tmp_path):
    """A table without an id column keys rows by their text: a holdout file read with other flags,
    or keyed by tweet id, still finds its tweets by text."""
    from training.data import Source, prepare

    rows = [(f"10{i}", f"tweet number {i}", "positive" if i % 2 else "negative") for i in range(40)]
    data = tmp_path / "data.csv"
    data.write_text("tweet_id,sentiment,tweet\n" + "".join(f"{i},{y},{t}\n" for i, t, y in rows))
    held = tmp_path / "held.tsv"  # SemEval layout, other ids
    held.write_text("".join(f"9{i}\t{y}\t{t}\n" for i, t, y in rows[:10]))
    src = Source(str(data), "table", text_col="tweet", label_col="sentiment", id_col="tweet_id")
    summary = prepare([src], tmp_path / "out", seed=42, holdout=[Source(str(held))])
    assert summary["dropped"]["in_holdout"] == 10 and summary["kept"] == 30


def test_semicolon_tables_as_european_excel_writes_them(tmp_path):
    from sentiment_core.readers import table_separator

    semi = tmp_path / "excel.csv"
    semi.write_text('id;text;label\n1;"good, very good";positive\n2;bad;negative\n')
    chunks = list(read_labelled(str(semi), "auto", id_col="id"))
    assert [(c.ids, c.texts, c.labels) for c in chunks] == [(["1", "2"], ["good, very good", "bad"], [1, 0])]
    assert table_separator("t.csv", 'id,"a;b",text') == ","
    assert table_separator("t.csv", '"id";"text, full"') == ";"
    assert table_separator("t.csv.gz", "id|text") == "|"
    assert table_separator("x/t.tsv", "id,text") == "\t"
    assert table_separator("t.csv", "text") == ","


def test_a_table_without_text_and_label_columns_is_read_by_the_usual_names(tmp_path, caplog):
    """Kaggle's tweet sets name their columns otherwise: the airline tweets' airline_sentiment, the
    Tweet Sentiment Extraction set's sentiment beside selected_text, a Parquet Text/Polarity. Found
    by name and logged; a column the user names is taken as named, or refused when absent."""
    import logging

    import pandas as pd

    airline = tmp_path / "Tweets.csv"
    airline.write_text("tweet_id,airline_sentiment,airline_sentiment_confidence,text\n"
                       "1,positive,1.0,great crew\n2,negative,0.7,\"lost my bag,\nagain\"\n3,neutral,1.0,flying\n")
    extraction = tmp_path / "train.csv"
    extraction.write_text("textID,text,selected_text,sentiment\na1,so happy today,happy,positive\n"
                          "b2,worst day,worst,negative\n")
    pq = tmp_path / "p.parquet"
    pd.DataFrame({"Text": ["yes!", "no."], "Polarity": [4, 0]}).to_parquet(pq)
    with caplog.at_level(logging.INFO, logger="sentiment_core.labelled"):
        got = {f.name: [(t, y) for c in read_labelled(str(f), "auto", ReadStats()) for t, y in zip(c.texts, c.labels)]
               for f in (airline, extraction, pq)}
    assert got == {"Tweets.csv": [("great crew", 1), ("lost my bag,\nagain", 0)],
                   "train.csv": [("so happy today", 1), ("worst day", 0)],
                   "p.parquet": [("yes!", 1), ("no.", 0)]}
    assert "label column 'airline_sentiment', found by name" in caplog.text
    assert "text column 'Text', found by name" in caplog.text
    named = [y for c in read_labelled(str(extraction), "table", ReadStats(), text_col="selected_text") for y in c.texts]
    assert named == ["happy", "worst"]
    with pytest.raises(ValueError, match=r"column\(s\) \['mood'\] not found"):
        list(read_labelled(str(extraction), "table", ReadStats(), label_col="mood"))
