"""The onnxruntime-genai backend, on the fixture model written in that format.

Both backends then run the same n-gram graph with the same token ids, so every reply must
be identical: what differs is only the adapter (genai's tokenizer, its key/value cache).
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from ogevm.constants import GAS_MODEL_BASE, MODEL_OPS_PER_GAS
from ogevm.errors import InvalidInput, InvalidModel
from ogevm.llm import ChatMessage, LLMRuntime, ToolDefinition, fixture_llm
from ogevm.models.cid import compute_cid

pytest.importorskip("onnxruntime_genai")
from ogevm.llm.genai import GenaiModel, folder_cid  # noqa: E402

from fixture_scripts import fixture_script

WEATHER = ToolDefinition("Get the weather of a city", "get_weather",
                         '{"type": "object", "properties": {"city": {"type": "string"}}}')


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("genai") / "tiny_chat_genai"
    fixture_script("generate_llm.py").write_genai(path)
    return path


@pytest.fixture(scope="module")
def runtime(folder):
    return LLMRuntime([GenaiModel(folder, name="genai"), fixture_llm()])


@pytest.mark.parametrize("prompt, temperature, seed", [("A smart contract", 0, 0), ("The weather", 0, 0),
                                                        ("The weather", 70, 1), ("Gas", 100, 2 ** 255)])
def test_completions_equal_the_fixture_backend(runtime, prompt, temperature, seed):
    genai = runtime.complete("genai", prompt, 120, ["zz"], temperature, seed)
    assert genai == runtime.complete("tiny_chat", prompt, 120, ["zz"], temperature, seed)


def test_chats_and_forced_tool_calls_equal_the_fixture_backend(runtime):
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "Weather in Rome?")]
    for tool_choice in ("", "get_weather"):
        genai = runtime.chat("genai", messages, 100, [WEATHER], tool_choice)
        assert genai == runtime.chat("tiny_chat", messages, 100, [WEATHER], tool_choice)
    assert genai.finish_reason == "tool_calls"


def test_an_empty_prompt_starts_from_the_models_first_token(runtime):
    result = runtime.complete("genai", "", 30)
    assert result.tokens_in == 0 and 1 <= result.tokens_out <= 30


def test_the_cid_is_the_folder_manifest_and_gas_follows_the_weights(folder, tmp_path):
    manifest = "".join(f"{name}\0{hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n"
                       for name in sorted(p.name for p in folder.iterdir()))
    model = GenaiModel(folder)
    assert model.cid == compute_cid(manifest.encode()) and model.name == "tiny_chat_genai"
    weights = (folder / "model.onnx").stat().st_size
    assert model.cost_per_token == GAS_MODEL_BASE + -(-2 * weights // MODEL_OPS_PER_GAS)
    assert GenaiModel(folder, cost_per_token=7, max_output_tokens=10_000).cost_per_token == 7
    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "genai_config.json").write_text((copy / "genai_config.json").read_text() + " ")
    assert folder_cid(copy) != model.cid


def test_a_folder_that_is_no_genai_model_is_refused(tmp_path):
    with pytest.raises(InvalidModel, match="is not an onnxruntime-genai model"):
        GenaiModel(tmp_path)


def test_a_model_without_the_chat_markers_completes_but_cannot_chat(folder, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "plain")
    data = json.loads((copy / "tokenizer.json").read_text(encoding="utf-8"))
    data["added_tokens"] = [a for a in data["added_tokens"] if a["content"] != "<|im_start|>"]
    del data["model"]["vocab"]["<|im_start|>"]
    (copy / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    runtime = LLMRuntime([GenaiModel(copy, name="plain")])
    assert runtime.complete("plain", "A smart contract", 20).tokens_out >= 1
    with pytest.raises(InvalidInput, match=r"model 'plain' has no <\|im_start\|> token"):
        runtime.chat("plain", [ChatMessage("user", "Hi")], 20)


def test_a_model_folder_added_to_a_data_directory_is_kept_and_called_at_0xf4(folder, tmp_path, runtime):
    """``ModelStore.add_llm_folder`` keeps a copy under the folder's CID; a store opened on the
    same directory later (a node's next start) knows it by name, and a chain calls it INLINE."""
    from ogevm.abi.llm import LLMCompletionRequest, LLMInferenceMode, decode_completion_response, encode_llm_completion
    from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
    from ogevm.models.store import ModelStore
    from ogevm.vm.chain import DevChain

    added = ModelStore(tmp_path).add_llm_folder(folder, name="genai")
    assert (tmp_path / "llm" / added.cid / "genai_config.json").exists()
    reopened = ModelStore(tmp_path)
    assert reopened.llms.model("genai").cid == added.cid and reopened.llm_folders()[added.cid][1] == "genai"
    request = LLMCompletionRequest(LLMInferenceMode.VANILLA, "genai", "A smart contract", 24, (), 0)
    answer = decode_completion_response(DevChain(reopened).call(INFERENCE_PRECOMPILE_ADDRESS, encode_llm_completion(request)))
    assert answer == runtime.complete("genai", "A smart contract", 24).text


def test_a_kept_folder_whose_files_changed_is_skipped_with_the_reason(folder, tmp_path):
    from ogevm.models.store import ModelStore

    cid = ModelStore(tmp_path).add_llm_folder(folder).cid
    config = tmp_path / "llm" / cid / "genai_config.json"
    config.write_text(config.read_text() + " ")
    reopened = ModelStore(tmp_path)
    assert not reopened.llms.knows("tiny_chat_genai")
    assert "not the CID of its files" in reopened.skipped[tmp_path / "llm" / cid]


def test_a_model_folder_call_through_pipe_with_a_simulation_worker_equals_inline(folder):
    """The simulation worker process loads the folder the store names, so PIPE captures the call
    and the replay answers what INLINE answers (same header)."""
    from eth.db.atomic import AtomicDB

    from ogevm.abi.llm import LLMCompletionRequest, LLMInferenceMode, encode_llm_completion
    from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
    from ogevm.models.store import ModelStore
    from ogevm.pipe.pipeline import Pipeline
    from ogevm.pipe.simulation import WorkerSimulator, process_workers
    from ogevm.vm.chain import DevChain
    from ogevm.vm.recording_db import RecordingDB
    from pipe.pipe_helpers import NODE_KEY, mine_inline_like  # tests/ is on sys.path

    db = RecordingDB(AtomicDB())
    chain, twin = DevChain(ModelStore(), db=db), DevChain(ModelStore())
    for store in (chain.models, twin.models):
        store.add_llm_folder(folder, name="genai")
    pipeline = Pipeline(chain, NODE_KEY, simulator=WorkerSimulator(
        chain, db, process_workers(chain.base_vm_class, chain.chain.chain_id), 1))
    try:
        request = LLMCompletionRequest(LLMInferenceMode.VANILLA, "genai", "The weather", 20, (), 60)
        pipeline.submit(chain.sign(0, INFERENCE_PRECOMPILE_ADDRESS, encode_llm_completion(request), gas=2_000_000))
        (built,) = pipeline.run_until_idle()
        assert [r.model_cid for r in built.records] == ["genai"] and built.records[0].result.error is None
        assert mine_inline_like(twin, built.block)[0].header == built.block.header
    finally:
        pipeline.close()
