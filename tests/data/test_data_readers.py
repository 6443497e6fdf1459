import logging

import pytest
import torch

from seqmodels.data import (
    DataError,
    DataFileNotFoundError,
    read_conllu,
    read_labelled,
    read_pairs,
    read_series_csv,
)

CONLLU = (
    "# sent_id = 1\n"
    "# text = Hi there\n"
    "1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n"
    "2-3\tthere's\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\tthere\tthere\tADV\t_\t_\t1\tadvmod\t_\t_\n"
    "3\t's\tbe\tAUX\t_\t_\t1\tcop\t_\t_\n"
    "\n"
    "1\tBye\tbye\tINTJ\tUH\t_\t0\troot\t_\t_\n"
    "\n"
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- round trips
def test_labelled_csv_round_trip_with_quotes(tmp_path):
    rows = [("hello, world", "greet"), ('say "hi"', "greet"), ("two\nlines", "multi")]
    import csv

    path = tmp_path / "d.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "text"])
        for text, label in rows:
            w.writerow([label, text])
    records = read_labelled(path)
    assert [(r.source, r.target) for r in records] == rows
    assert [r.line for r in records] == [2, 3, 4]


def test_tsv_by_suffix_index_columns_without_header(tmp_path):
    path = _write(tmp_path, "d.tsv", "a b\tx\n\nc\ty\n")
    records = read_labelled(path, text_column=0, label_column=1, header=False)
    assert [(r.source, r.target, r.line) for r in records] == [("a b", "x", 1), ("c", "y", 3)]


def test_sequence_column_and_regression_label(tmp_path):
    path = _write(tmp_path, "s.csv", 'seq,y\n"1,2 3,4 5,6",0.5\n"7,8",-1e3\n')
    records = read_labelled(
        path, text_column="seq", label_column="y", input_type="sequence", target_type="regression"
    )
    assert records[0].source == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert [r.target for r in records] == [0.5, -1000.0]


def test_pairs_round_trip(tmp_path):
    path = _write(tmp_path, "p.tsv", "cat\tK AE T\ndog\tD AO G\n")
    assert [(r.source, r.target) for r in read_pairs(path)] == [
        ("cat", "K AE T"),
        ("dog", "D AO G"),
    ]


def test_conllu_round_trip_skips_comments_and_multiword_ranges(tmp_path):
    path = _write(tmp_path, "t.conllu", CONLLU)
    s = read_conllu(path)
    assert [x.tokens for x in s] == [["Hi", "there", "'s"], ["Bye"]]
    assert [x.tags for x in s] == [["INTJ", "ADV", "AUX"], ["INTJ"]]
    assert s[0].lines == [3, 5, 6] and s[1].line == 8
    assert read_conllu(path, tag_column="deprel")[0].tags == ["root", "advmod", "cop"]
    with pytest.raises(DataError, match=r"t\.conllu, line 3: word has no XPOS"):
        read_conllu(path, tag_column="xpos")


def test_series_round_trip(tmp_path):
    path = _write(tmp_path, "s.csv", "date,a,b\n2020-01-01,1,2.5\n2020-01-02, 3 ,4\n")
    assert read_series_csv(path, ["b", "a"]).tolist() == [[2.5, 1.0], [4.0, 3.0]]


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "reader",
    [
        lambda p: read_labelled(p),
        lambda p: read_pairs(p),
        lambda p: read_conllu(p),
        lambda p: read_series_csv(p, ["x"]),
    ],
)
def test_missing_and_empty_files_are_named(tmp_path, reader):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataFileNotFoundError, match=r"nope\.csv: .*not found"):
        reader(missing)
    with pytest.raises(FileNotFoundError):
        reader(missing)
    empty = _write(tmp_path, "empty.csv", "\n  \n")
    with pytest.raises(DataError, match=r"empty\.csv: file is empty"):
        reader(empty)


def test_wrong_column_count_names_file_line_and_expectation(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\nok,a\nbad,b,extra\n")
    with pytest.raises(
        DataError, match=r"d\.csv, line 3: expected 2 columns like the header, got 3"
    ):
        read_labelled(path)
    pairs = _write(tmp_path, "p.tsv", "a\tb\nonly one\n")
    with pytest.raises(DataError, match=r"p\.tsv, line 2: expected 2 columns, got 1"):
        read_pairs(pairs)


def test_unknown_column_name(tmp_path):
    path = _write(tmp_path, "d.csv", "sentence,label\nok,a\n")
    with pytest.raises(DataError, match=r"d\.csv, line 1: no column 'text'; expected one of"):
        read_labelled(path)
    with pytest.raises(DataError, match=r"line 1: no column\(s\) \['temp'\]"):
        read_series_csv(path, ["temp"])


def test_unparsable_numbers_name_line_and_column(tmp_path):
    path = _write(tmp_path, "r.csv", "text,label\nok,1.5\nbad,abc\n")
    with pytest.raises(
        DataError, match=r"r\.csv, line 3: label: cannot parse 'abc'; expected a number"
    ):
        read_labelled(path, target_type="regression")
    seq = _write(tmp_path, "s.csv", 'seq,label\n"1 2 x",a\n')
    with pytest.raises(DataError, match=r"s\.csv, line 2: sequence step 3: cannot parse 'x'"):
        read_labelled(seq, text_column="seq", input_type="sequence")
    ragged = _write(tmp_path, "g.csv", 'seq,label\n"1,2 3",a\n')
    with pytest.raises(DataError, match=r"line 2: sequence step 2 has 1 features; expected 2"):
        read_labelled(ragged, text_column="seq", input_type="sequence")
    ts = _write(tmp_path, "t.csv", "date,temp\nd1,1\nd2,\nd3,nan\n")
    with pytest.raises(DataError, match=r"t\.csv, line 3: column 'temp': cannot parse ''"):
        read_series_csv(ts, ["temp"])


def test_conllu_wrong_field_count_and_bad_id(tmp_path):
    bad = CONLLU.replace("2\tthere\tthere\tADV\t_\t_\t1\tadvmod\t_\t_", "2\tthere\tADV")
    path = _write(tmp_path, "b.conllu", bad)
    with pytest.raises(
        DataError, match=r"b\.conllu, line 5: expected 10 tab-separated CoNLL-U fields.*got 3"
    ):
        read_conllu(path)
    path = _write(tmp_path, "i.conllu", CONLLU.replace("1\tBye", "x\tBye"))
    with pytest.raises(DataError, match=r"i\.conllu, line 8: ID 'x' is not a word index"):
        read_conllu(path)
    with pytest.raises(ValueError, match="unknown tag_column"):
        read_conllu(path, tag_column="color")


def test_encoding_errors_name_the_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv, line 2: byte 0xe9 is not valid utf-8"):
        read_labelled(path)
    assert read_labelled(path, encoding="latin-1")[0].source == "café"


def test_skip_invalid_counts_and_logs(tmp_path, caplog):
    path = _write(tmp_path, "d.csv", "text,label\nok,1\nbad,b,c\nfine,2\nworse,x\n")
    with caplog.at_level(logging.WARNING, logger="seqmodels.data"):
        records = read_labelled(path, target_type="regression", skip_invalid=True)
    assert [r.source for r in records] == ["ok", "fine"]
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "skipped 2 invalid row(s)" in msg and "d.csv, line 3" in msg and "line 5" in msg


def test_skip_invalid_conllu_drops_whole_sentence_and_counts(tmp_path, caplog):
    bad = CONLLU.replace("3\t's\tbe\tAUX\t_\t_\t1\tcop\t_\t_", "3\t's")
    path = _write(tmp_path, "b.conllu", bad)
    with caplog.at_level(logging.WARNING, logger="seqmodels.data"):
        sentences = read_conllu(path, skip_invalid=True)
    assert [s.tokens for s in sentences] == [["Bye"]]
    assert "skipped 1 invalid row(s)" in caplog.text


def test_skip_invalid_series(tmp_path, caplog):
    path = _write(tmp_path, "t.csv", "date,temp\nd1,1\nd2,oops\nd3,3\n")
    with caplog.at_level(logging.WARNING, logger="seqmodels.data"):
        series = read_series_csv(path, ["temp"], skip_invalid=True)
    assert torch.equal(series, torch.tensor([[1.0], [3.0]]))
    assert "skipped 1 invalid row(s) in" in caplog.text


def test_all_rows_invalid_is_an_error_even_when_skipping(tmp_path):
    path = _write(tmp_path, "d.csv", "text,label\nbad,b,c\n")
    with pytest.raises(DataError, match=r"d\.csv: no valid rows"):
        read_labelled(path, skip_invalid=True)
