"""The benchmark runs end to end and writes a well-formed table and JSON (no timing asserted)."""

import json
import subprocess
import sys
import warnings

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from seqmodels.cli import bench
from seqmodels.diagnostics import speed
from seqmodels.diagnostics.implementations import implementation_names
from seqmodels.experiment.entry import CONFIG_MODULE


def bench_config(tmp_path, *overrides: str) -> DictConfig:
    """``bench.yaml`` with ``overrides``, composed as ``seqmodels-bench`` composes it."""
    bench.register_bench_schema()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose("bench", overrides=[*overrides, f"output_dir={tmp_path / 'run'}"])


def test_quick_benchmark_writes_table_and_json(tmp_path, capsys):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    cfg = bench_config(
        tmp_path,
        "quick=true",
        "configs=[a,D]",
        "threads=1",
        f"json={out_json}",
        f"markdown={out_md}",
    )
    bench.bench(cfg)
    report = json.loads(out_json.read_text())
    assert [r["config"]["name"] for r in report["results"]] == ["A", "D"]
    assert report["matmul_roof_gflops"] > 0
    for result in report["results"]:
        impls = result["implementations"]
        assert set(impls) == set(implementation_names("elman"))
        assert impls["nn.RNN"]["train_ratio"] == pytest.approx(1.0)
        for entry in impls.values():
            for key in (
                "train_ms",
                "infer_ms",
                "train_tokens_per_s",
                "train_ratio",
                "infer_ratio",
                "train_gflops",
                "train_peak_mib",
            ):
                assert entry[key] > 0, key
            assert len(entry["train_rounds_ms"]) == report["rounds"]
            if speed.minor_page_faults() is not None:  # counted where the OS reports them
                assert entry["train_page_faults"] >= 0 and entry["infer_page_faults"] >= 0
    table = out_md.read_text().strip().splitlines()
    header = [line for line in table if line.startswith("| config")]
    rows = [line for line in table if line.startswith("| A") or line.startswith("| D")]
    assert len(header) == 1 and len(rows) == 2 * 5  # A and D: nn.RNN and four backends
    assert all(row.count("|") == header[0].count("|") for row in rows)
    assert capsys.readouterr().out.strip().endswith(table[-1])
    # The run directory always gets both, as every command writes its results there.
    assert json.loads((tmp_path / "run" / "bench.json").read_text()) == report
    assert (tmp_path / "run" / "bench.md").read_text() == out_md.read_text()


@pytest.mark.skipif(speed.minor_page_faults() is None, reason="the OS reports no page faults")
@pytest.mark.serial  # in a process that ran many tests the allocator may hand back touched pages
def test_page_faults_count_first_touches_of_fresh_memory():
    before = speed.minor_page_faults()
    fresh = torch.empty(64 << 18)  # 64 MiB: beyond malloc's heap, mapped fresh by the OS
    fresh.fill_(1.0)  # first touch of every page
    # 16384 pages of 4 KiB, or 32 of 2 MiB under transparent huge pages
    assert speed.minor_page_faults() - before >= 32


def test_flop_count_of_a_config():
    cfg = speed.CONFIGS["D"]  # bidirectional: two directions of (I*H + H*H) per step
    assert cfg.flops_forward() == 2 * 100 * 2 * 32 * (64 * 128 + 128 * 128)


def test_unknown_config_is_an_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqmodels.cli.bench", "configs=[Z]", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "unknown configuration" in result.stderr and "'Z'" in result.stderr


def test_a_misspelt_option_fails_at_start(tmp_path):
    with pytest.raises(Exception, match="roundz"):
        bench_config(tmp_path, "roundz=3")


def test_reference_rnn_has_its_own_flat_weights_and_never_warns():
    """A reference nn.RNN sharing or re-assigned parameters warns on cuDNN that its weights
    are "not part of single contiguous chunk of memory" and compacts them on every call."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = speed.Config("tiny", 2, 5, 3, 4, num_layers=2, bidirectional=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning, the contiguity one included, fails
        result = speed.bench_config(
            cfg, device, torch.float32, rounds=1, warmup=1, min_seconds=0.0, memory=True
        )
    assert set(result["implementations"]) == set(implementation_names("elman"))


@pytest.mark.parametrize(("cell", "reference"), [("lstm", "nn.LSTM"), ("gru", "nn.GRU")])
def test_gated_cells_run_side_by_side_with_torch_without_warnings(tmp_path, cell, reference):
    out_md = tmp_path / "bench.md"
    cfg = bench_config(
        tmp_path, f"cell={cell}", "quick=true", "configs=[A,D]", "threads=1", f"markdown={out_md}"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = bench.bench(cfg)
    assert report["cell"] == cell and report["reference"] == reference
    for result in report["results"]:
        impls = result["implementations"]
        assert list(impls) == [reference, "autograd", "bptt", "torch", "auto", "cell loop"]
        assert impls[reference]["train_ratio"] == pytest.approx(1.0)
        assert all(e["train_ms"] > 0 and e["train_peak_mib"] > 0 for e in impls.values())
    assert f"train × {reference}" in out_md.read_text()


@pytest.mark.parametrize(
    ("cell", "reference"),
    [("user", "nn.LSTM"), ("lnlstm", "nn.LSTM"), ("lngru", "nn.GRU"), ("indrnn", "nn.RNN")],
)
def test_engine_cells_run_beside_their_step_loop(tmp_path, cell, reference):
    cfg = bench_config(tmp_path, f"cell={cell}", "quick=true", "configs=[A,D]", "threads=1")
    report = bench.bench(cfg)
    assert report["cell"] == cell and report["reference"] == reference
    for result in report["results"]:
        impls = result["implementations"]
        assert list(impls) == [reference, "engine", "step loop"]
        assert all(e["train_ms"] > 0 for e in impls.values())


def test_regularised_rows_run_beside_each_row_that_takes_them(tmp_path):
    """``weight_dropout=... zoneout=...``: each seqmodels row again with them ("+reg"), in
    training; the torch backend, which refuses zoneout, and torch's module get none."""
    cfg = bench_config(
        tmp_path, "cell=lstm", "quick=true", "configs=[A]", "threads=1", "memory=false",
        "implementations=[bptt,torch]", "weight_dropout=0.5", "zoneout=0.1",
    )  # fmt: skip
    report = bench.bench(cfg)
    assert report["regularisers"] == {"weight_dropout": 0.5, "zoneout": 0.1}
    impls = report["results"][0]["implementations"]
    assert list(impls) == ["nn.LSTM", "bptt", "bptt +reg", "torch"]
    models = speed.with_regularised(
        {"engine": speed.build_implementations("lnlstm", names=["engine"], input_size=3,
                                                hidden_size=4)["engine"]},
        {"recurrent_dropout": 0.25},
    )  # fmt: skip
    layers = [m for m in models["engine +reg"].modules() if hasattr(m, "recurrent_dropout")]
    assert layers and all(m.recurrent_dropout == 0.25 for m in layers)
    assert all(m.recurrent_dropout == 0.0 for m in models["engine"].modules()
               if hasattr(m, "recurrent_dropout"))  # fmt: skip


@pytest.mark.slow
def test_compiled_rows_run_beside_the_rows_that_compile(tmp_path):
    """``compile=true``: the bptt row again under ``torch.compile(fullgraph=True)``, on the
    same weights; torch's rows get none."""
    cfg = bench_config(
        tmp_path, "cell=gru", "quick=true", "configs=[A]", "threads=1", "memory=false",
        "implementations=[bptt,torch]", "compile=true",
    )  # fmt: skip
    report = bench.bench(cfg)
    impls = report["results"][0]["implementations"]
    assert report["compiled"] and list(impls) == ["nn.GRU", "bptt", "bptt +compile", "torch"]
    assert impls["bptt +compile"]["train_ms"] > 0


def test_an_elementwise_recurrence_counts_no_recurrent_gemm():
    indrnn = speed.Config("x", 2, 3, 4, 5, cell="indrnn")
    assert indrnn.flops_forward() == 2 * 2 * 3 * 4 * 5


def test_gated_flops_count_the_gates():
    lstm = speed.Config("x", 2, 3, 4, 5, cell="lstm")
    assert lstm.flops_forward() == 4 * speed.Config("x", 2, 3, 4, 5).flops_forward()


def test_unknown_cell_is_an_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqmodels.cli.bench", "cell=rnn", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "unknown cell 'rnn'" in result.stderr
