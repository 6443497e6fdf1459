"""The benchmark runs end to end and writes a well-formed table and JSON (no timing asserted)."""

import json

import pytest

from seqmodels import bench


def test_quick_benchmark_writes_table_and_json(tmp_path, capsys):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    code = bench.main(
        [
            "--quick",
            "--configs",
            "a,D",
            "--threads",
            "1",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    assert code == 0
    report = json.loads(out_json.read_text())
    assert [r["config"]["name"] for r in report["results"]] == ["A", "D"]
    assert report["matmul_roof_gflops"] > 0
    for result in report["results"]:
        impls = result["implementations"]
        assert set(impls) == set(bench.IMPLEMENTATIONS)
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
    table = out_md.read_text().strip().splitlines()
    header = [line for line in table if line.startswith("| config")]
    rows = [line for line in table if line.startswith("| A") or line.startswith("| D")]
    assert len(header) == 1 and len(rows) == 6
    assert all(row.count("|") == header[0].count("|") for row in rows)
    assert capsys.readouterr().out.strip().endswith(table[-1])


def test_flop_count_of_a_config():
    cfg = bench.CONFIGS["D"]  # bidirectional: two directions of (I*H + H*H) per step
    assert cfg.flops_forward() == 2 * 100 * 2 * 32 * (64 * 128 + 128 * 128)


def test_unknown_config_is_an_error():
    with pytest.raises(SystemExit):
        bench.main(["--configs", "Z"])
