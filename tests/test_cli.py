"""The command line: the demo runs end to end; models are managed in a data directory or on a
running node; help, errors and piped output read well; nothing is left in the temp folder."""

from __future__ import annotations

import argparse
import io
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
from llm_files import bad_llm_files, renamed_llm
from ogevm.cli import build_parser, main
from ogevm.demo import WEATHER_CHAT, run_demo
from ogevm.fixtures import fixture_model
from ogevm.llm import default_runtime, fixture_llm
from ogevm.models.cid import compute_cid


def test_demo_settles_every_transaction_and_validates_every_block():
    printed = io.StringIO()
    report = run_demo(Console(file=printed, width=200), burst=3)
    statuses = [row["status"] for row in report["rows"]]
    assert statuses == ["included"] * len(statuses)
    assert report["same_state_root"] and report["validated_blocks"] >= len(report["blocks"])
    nan_row = report["rows"][-1]
    assert "contains NaN" in nan_row["output"]
    # the LLM chat: its forced tool call, as the runtime makes it here, settled and printed
    (llm_row,) = [row for row in report["rows"] if row["tx"].startswith("runLLMChat")]
    chat = WEATHER_CHAT
    (call,) = default_runtime().chat(chat.model_cid, chat.messages, chat.max_tokens, chat.tools,
                                     chat.tool_choice).message.tool_calls
    assert llm_row["output"] == f"{call.name}({call.arguments})" and call.name == "get_weather"
    assert llm_row["output"] in printed.getvalue()
    assert report["task_runs"] >= 1  # the scheduled forecaster, one inference per block it ran in
    assert sum(b.records for b in report["blocks"]) == len(statuses) + 2 + report["task_runs"]  # two calls in two txs


def test_models_add_and_list_in_a_data_dir(tmp_path, capsys):
    assert main(["models", "--data-dir", str(tmp_path), "add", str(fixture_model("small_mlp"))]) == 0
    assert main(["models", "list", "--data-dir", str(tmp_path)]) == 0  # options after the action too
    out = capsys.readouterr().out
    assert out.count("bafkrei") == 3  # added, listed, and the fixture language model listed
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


def test_a_language_model_is_added_to_a_data_dir_and_listed(tmp_path, capsys):
    data = renamed_llm("cli_chat")
    path = tmp_path / "cli_chat.onnx"
    path.write_bytes(data)
    assert main(["models", "--data-dir", str(tmp_path), "add", "--llm", str(path)]) == 0
    model, cid = fixture_llm(), compute_cid(data)
    line = (f"{cid}  language model cli_chat  context {model.context_length} tokens  "
            f"max output {model.max_output_tokens} tokens  gas/token {model.cost_per_token}")
    assert capsys.readouterr().out.splitlines() == [line]
    assert (tmp_path / "models" / "llm" / f"{cid}.onnx").read_bytes() == data
    assert main(["models", "list", "--data-dir", str(tmp_path)]) == 0  # a new store reads it back
    assert capsys.readouterr().out.splitlines() == [line.replace(cid, model.cid).replace("cli_chat", "tiny_chat"),
                                                    line]


@pytest.mark.parametrize("what", sorted(bad_llm_files()))
def test_a_bad_language_model_file_is_a_readable_error(tmp_path, capsys, what):
    data, words = bad_llm_files()[what]
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    assert main(["models", "--data-dir", str(tmp_path), "add", "--llm", str(path)]) == 1
    captured = capsys.readouterr()
    assert words in captured.err and "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "models" / "llm").exists() or not any((tmp_path / "models" / "llm").iterdir())


def test_a_folder_that_is_no_model_is_refused_with_the_reason(tmp_path, capsys):
    folder = tmp_path / "genai_model"
    folder.mkdir()
    assert main(["models", "--data-dir", str(tmp_path), "add", "--llm", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "is not an onnxruntime-genai model" in err and "Traceback" not in err


def test_a_model_folder_is_not_sent_to_a_running_node(tmp_path, capsys):
    assert main(["models", "--rpc", "http://127.0.0.1:1", "add", "--llm", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "is a folder" in err and "data directory" in err


def test_a_node_refuses_to_start_with_a_bad_language_model_in_its_models_dir(tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    data, words = bad_llm_files()["the wrong shapes"]
    (models / "bad_llm.onnx").write_bytes(data)
    assert main(["node", "--in-memory", "--sim-workers", "0", "--models", str(models)]) == 1
    assert words in capsys.readouterr().err


@pytest.mark.slow
def test_language_models_on_a_running_node(tmp_path, capsys):
    """``--models DIR`` tells a language model file from an ONNX model by its metadata;
    ``models add --llm --rpc`` registers one with the node, and refuses bad ones readably."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "dir_chat.onnx").write_bytes(renamed_llm("dir_chat"))
    (models / "small_mlp.onnx").write_bytes(fixture_model("small_mlp").read_bytes())
    added = tmp_path / "rpc_chat.onnx"
    added.write_bytes(renamed_llm("rpc_chat"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(bad_llm_files()["ONNX without the metadata"][0])
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    with running_node([sys.executable, "-m", "ogevm.cli"], tmp_path, env, options=["--models", str(models)]) as port:
        url = f"http://127.0.0.1:{port}"
        assert main(["models", "add", "--llm", str(added), "--rpc", url]) == 0
        assert capsys.readouterr().out.startswith(f"{compute_cid(added.read_bytes())}  language model rpc_chat  ")
        assert main(["models", "add", "--llm", str(bad), "--rpc", url]) == 1
        assert "not a byte-window-v1 language model" in capsys.readouterr().err
        assert main(["models", "list", "--rpc", url]) == 0
        lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(compute_cid(fixture_model("small_mlp").read_bytes())) and "inputs" in lines[0]
    assert [line.split("  ")[1] for line in lines[1:]] == [
        "language model tiny_chat", "language model dir_chat", "language model rpc_chat"]


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
        assert capsys.readouterr().out.count("bafkrei") == 3  # and the fixture language model
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
