"""The command line: the demo runs end to end; models are managed in a data directory or on a
running node; help, errors and piped output read well; nothing is left in the temp folder."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from rich.console import Console

from cli_helpers import free_port, rpc, running_node
from ogevm.cli import build_parser, main
from ogevm.demo import run_demo
from ogevm.fixtures import fixture_model


def test_demo_settles_every_transaction_and_validates_every_block():
    report = run_demo(Console(file=open("/dev/null", "w")), burst=3)
    statuses = [row["status"] for row in report["rows"]]
    assert statuses == ["included"] * len(statuses)
    assert report["same_state_root"] and report["validated_blocks"] >= len(report["blocks"])
    nan_row = report["rows"][-1]
    assert "contains NaN" in nan_row["output"]
    assert report["task_runs"] >= 1  # the scheduled forecaster, one inference per block it ran in
    assert sum(b.records for b in report["blocks"]) == len(statuses) + 2 + report["task_runs"]  # two calls in two txs


def test_models_add_and_list_in_a_data_dir(tmp_path, capsys):
    assert main(["models", "--data-dir", str(tmp_path), "add", str(fixture_model("small_mlp"))]) == 0
    assert main(["models", "list", "--data-dir", str(tmp_path)]) == 0  # options after the action too
    out = capsys.readouterr().out
    assert out.count("bafkrei") == 2
    # not a terminal: each model stays on one line, however long (no wrapping at 80 columns)
    listed = [line for line in out.splitlines() if "inputs" in line]
    assert len(listed) == 1 and listed[0].startswith("bafkrei") and len(listed[0]) > 80
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main(["models", "--data-dir", str(tmp_path), "add", str(bad)]) == 1
    assert "not a valid ONNX model" in capsys.readouterr().err


def test_an_error_is_printed_as_it_is_not_as_rich_markup(tmp_path, capsys):
    missing = tmp_path / "[bold]model.onnx"
    assert main(["models", "--data-dir", str(tmp_path), "add", str(missing)]) == 1
    captured = capsys.readouterr()
    assert "[bold]model.onnx" in captured.err and captured.out == ""


def _walk(parser: argparse.ArgumentParser, path: str):
    """Every (command path, action) of ``parser`` and its subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_command_and_option_has_help_and_shows_its_default():
    parser = build_parser()
    assert "ONNX models" in parser.description and "``" not in parser.description
    actions = list(_walk(parser, "ogevm"))
    assert {path for path, _ in actions} >= {"ogevm node", "ogevm compile", "ogevm models add", "ogevm bench"}
    for path, action in actions:
        assert action.help, f"{path} {action.option_strings or action.dest} has no help"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in action.help, f"{path} {action.option_strings} does not show its default"


def test_models_add_help_mentions_rpc(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "add", "--help"])
    assert exit_info.value.code == 0
    assert "--rpc URL" in capsys.readouterr().out


@pytest.mark.slow
def test_rpc_before_or_after_the_action_and_no_temp_files_left(tmp_path, capsys):
    """A node in memory with ZKML keeps its circuits in a temporary folder: it is gone after exit."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    with running_node([sys.executable, "-m", "ogevm.cli"], tmp_path, env) as port:
        url = f"http://127.0.0.1:{port}"
        assert main(["models", "add", str(fixture_model("small_mlp")), "--rpc", url]) == 0
        assert main(["models", "--rpc", url, "add", str(fixture_model("linear_regression"))]) == 0
        capsys.readouterr()
        assert main(["models", "list", "--rpc", url]) == 0
        assert capsys.readouterr().out.count("bafkrei") == 2
    # files onnxruntime keeps on purpose (its telemetry session, .ses) may stay; no folder may
    assert [p.name for p in temp.iterdir() if p.is_dir()] == []


def test_a_node_dumps_its_state_on_stop_and_another_loads_it_at_start(tmp_path):
    command, env = [sys.executable, "-m", "ogevm.cli"], {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    dump, someone = tmp_path / "state.json", "0x" + "ab" * 20
    with running_node(command, tmp_path, env, options=["--dump-state", str(dump)]) as port:
        rpc(port, "anvil_setBalance", someone, hex(12345))
        rpc(port, "anvil_setStorageAt", someone, "0x1", "0x" + "07".rjust(64, "0"))
    assert json.loads(dump.read_text())["accounts"][someone]["balance"] == hex(12345)
    with running_node(command, tmp_path, env, options=["--load-state", str(dump)]) as port:
        assert rpc(port, "eth_getBalance", someone, "latest") == hex(12345)
        assert int(rpc(port, "eth_getStorageAt", someone, "0x1", "latest"), 16) == 7


def test_a_bad_state_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"accounts": 5}')
    assert main(["node", "--in-memory", "--sim-workers", "0", "--load-state", str(bad)]) == 1
    assert f"--load-state {bad}" in capsys.readouterr().err
    assert main(["node", "--in-memory", "--sim-workers", "0", "--load-state", str(tmp_path / "none.json")]) == 1


def test_demo_serve_keeps_the_node_up_with_the_explorer_until_interrupted(tmp_path):
    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "ogevm.cli", "demo", "--serve", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert demo.poll() is None, demo.stdout.read()
            try:
                head = int(rpc(port, "eth_blockNumber"), 16)
                break
            except OSError:
                assert time.monotonic() < deadline, "the demo's node never answered"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert "explorer" in page.read().decode().lower()
        included = [rpc(port, "eth_getBlockByNumber", hex(n), False)["transactions"] for n in range(head + 1)]
        assert sum(len(txs) for txs in included) >= 16  # the burst went in before the node was served
    finally:
        demo.send_signal(signal.SIGTERM)
        output = demo.communicate(timeout=60)[0]
    assert demo.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
