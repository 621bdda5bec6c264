"""The command line: the demo runs end to end; models are managed in a data directory."""

from __future__ import annotations

from rich.console import Console

from ogevm.cli import main
from ogevm.demo import run_demo
from ogevm.fixtures import fixture_model


def test_demo_settles_every_transaction_and_validates_every_block():
    report = run_demo(Console(file=open("/dev/null", "w")), burst=3)
    statuses = [row["status"] for row in report["rows"]]
    assert statuses == ["included"] * len(statuses)
    assert report["same_state_root"] and report["validated_blocks"] >= len(report["blocks"])
    nan_row = report["rows"][-1]
    assert "contains NaN" in nan_row["output"]
    assert sum(b.records for b in report["blocks"]) == len(statuses) + 2  # two calls in two txs


def test_models_add_and_list_in_a_data_dir(tmp_path, capsys):
    assert main(["models", "--data-dir", str(tmp_path), "add", str(fixture_model("small_mlp"))]) == 0
    assert main(["models", "--data-dir", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert out.count("bafkrei") == 2
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main(["models", "--data-dir", str(tmp_path), "add", str(bad)]) == 1
    assert "not a valid ONNX model" in capsys.readouterr().out
