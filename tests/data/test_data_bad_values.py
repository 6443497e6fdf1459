"""No silent wrong answers from data files: non-finite numbers, bad bytes, empty splits."""

import pytest

from seqmodels.data import (
    DataError,
    EmptySplitError,
    ForecastingDataModule,
    LanguageModelDataModule,
    SequenceClassificationDataModule,
    min_examples,
    read_conllu,
    read_labelled,
    read_series_csv,
    split_indices,
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------- non-finite numbers
@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e400", "nan"])
def test_non_finite_series_values_are_rejected_with_file_and_line(tmp_path, value):
    path = _write(tmp_path, "t.csv", f"date,temp\nd1,1\nd2,{value}\nd3,2\n")
    with pytest.raises(DataError, match=r"t\.csv, line 3: column 'temp': .*expected a finite"):
        read_series_csv(path, ["temp"])


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_regression_targets_and_steps_are_rejected(tmp_path, value):
    path = _write(tmp_path, "r.csv", f"text,label\nok,1.5\nbad,{value}\n")
    with pytest.raises(DataError, match=r"r\.csv, line 3: label: .*expected a finite number"):
        read_labelled(path, target_type="regression")
    seq = _write(tmp_path, "s.csv", f'seq,label\n"1 2 3",a\n"1 {value} 3",b\n')
    with pytest.raises(DataError, match=r"s\.csv, line 3: sequence step 2: .*finite"):
        read_labelled(seq, text_column="seq", input_type="sequence")


def test_inf_in_a_forecasting_csv_fails_at_setup_with_file_and_line(tmp_path):
    rows = "\n".join(f"d{i},{'inf' if i == 40 else i}" for i in range(200))
    path = _write(tmp_path, "series.csv", "date,value\n" + rows + "\n")
    dm = ForecastingDataModule(path=str(path), window=8)  # default settings otherwise
    with pytest.raises(DataError, match=r"series\.csv, line 42: column 'value'"):
        dm.setup()


# ------------------------------------------------------------------- bad bytes
def test_invalid_utf8_names_file_and_line_in_csv_tsv_and_conllu(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_bytes(b"text,label\nfine,a\nok,b\ncaf\xe9,a\n")
    with pytest.raises(DataError, match=r"d\.csv, line 4: byte 0xe9 is not valid utf-8"):
        read_labelled(csv)
    tsv = tmp_path / "d.tsv"
    tsv.write_bytes(b"text\tlabel\nfine\ta\n\xff\tb\n")
    with pytest.raises(DataError, match=r"d\.tsv, line 3: byte 0xff is not valid utf-8"):
        read_labelled(tsv)
    conllu = tmp_path / "d.conllu"
    conllu.write_bytes(
        b"# c\n1\tHi\thi\tINTJ\t_\t_\t0\troot\t_\t_\n\n1\tB\xffe\tbye\tINTJ\t_\t_\t0\troot\t_\t_\n"
    )
    with pytest.raises(DataError, match=r"d\.conllu, line 4: byte 0xff is not valid utf-8"):
        read_conllu(conllu)
    series = tmp_path / "s.csv"
    series.write_bytes(b"date,temp\nd1,1\nd2,2\xfe\n")
    with pytest.raises(DataError, match=r"s\.csv, line 3: byte 0xfe"):
        read_series_csv(series, ["temp"])


# ------------------------------------------------------------------ empty splits
def test_split_that_rounds_to_nothing_fails_and_says_how_much_data_is_needed():
    assert min_examples(0.1, 0.1) == 6 and min_examples(0.0, 0.0) == 1
    with pytest.raises(EmptySplitError, match=r"validation split is empty.*at least 6 examples"):
        split_indices(5, 0.1, 0.1)
    train, val, test = split_indices(6, 0.1, 0.1)
    assert len(val) == 1 and len(test) == 1
    assert split_indices(3, 0.0, 0.0)[0]  # no validation split asked for: fine
    with pytest.raises(ValueError, match="add up to 1 or more"):
        split_indices(10, 0.6, 0.5)


def test_tiny_classification_csv_fails_at_setup_not_after_training(tmp_path):
    path = _write(tmp_path, "tiny.csv", "text,label\nann,f\nbob,m\ncid,m\ndee,f\n")
    dm = SequenceClassificationDataModule(path=str(path))  # default fractions 0.1/0.1
    with pytest.raises(EmptySplitError, match=r"split is empty.*at least 6 examples"):
        dm.setup()


def test_tiny_text_leaves_no_validation_text(tmp_path):
    path = _write(tmp_path, "t.txt", "abcd")
    dm = LanguageModelDataModule(path=str(path), batch_size=1, max_length=2)
    match = r"(val|test) split is empty.*_fraction=0\.1.*at least about 10 characters"
    with pytest.raises(EmptySplitError, match=match):
        dm.setup()


def _compose_train(overrides, tmp_path):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from seqmodels.experiment.entry import CONFIG_MODULE
    from seqmodels.experiment.schema import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.log_dir = str(tmp_path / "logs")
        cfg.paths.output_dir = str(tmp_path / "run")
        del cfg["hydra"]
    return cfg


def test_default_training_run_on_a_tiny_file_fails_before_building_a_model(tmp_path, monkeypatch):
    """``seqmodels-train experiment=classification data.path=tiny.csv``: no training, no
    EarlyStopping crash afterwards, but the empty split named at once."""
    from seqmodels.cli import train as train_cli

    path = _write(tmp_path, "tiny.csv", "text,label\nann,f\nbob,m\ncid,m\ndee,f\n")
    cfg = _compose_train(["experiment=classification", f"data.path={path}"], tmp_path)

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the data were checked")

    monkeypatch.setattr(train_cli, "instantiate_model", no_model)
    with pytest.raises(EmptySplitError, match="split is empty"):
        train_cli.train(cfg)
