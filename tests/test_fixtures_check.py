"""The committed fixtures are what their generators make: each generator's ``--check``
(models, the fixture language model, the vectors of 0xF4, of its LLM calls, of 0xF6 and of
scheduled tasks) passes on the repository, and fails naming each file that differs or is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GENERATORS = ("generate_models.py", "make_vectors.py", "make_preprocessing_vectors.py", "generate_llm.py",
              "make_llm_vectors.py", "make_task_vectors.py")


def check(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FIXTURES / script), "--check", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("script", GENERATORS)
def test_the_committed_files_match_a_fresh_generation(script, tmp_path):
    result = check(script, cwd=tmp_path)  # from another directory: the paths are the script's own
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok:")


def test_a_changed_or_missing_model_is_named(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(FIXTURES / "models", models)
    changed = models / "small_mlp.onnx"
    changed.write_bytes(changed.read_bytes() + b"\x00")
    (models / "sweep" / "sweep_5ms.onnx").unlink()
    result = check("generate_models.py", "--out", str(models), cwd=tmp_path)
    assert result.returncode == 1
    assert sorted(result.stdout.split("\n")[:-1]) == [
        f"differs: {changed}", f"missing: {models / 'sweep' / 'sweep_5ms.onnx'}"]


def test_changed_or_missing_vector_files_are_named(tmp_path):
    vectors = tmp_path / "vectors"
    shutil.copytree(FIXTURES / "vectors", vectors)
    document = vectors / "vectors.json"
    document.write_text(document.read_text().replace('"gas_used": ', '"gas_used": 1', 1))
    (vectors / "README.md").unlink()
    result = check("make_vectors.py", "--out", str(vectors), cwd=tmp_path)
    assert result.returncode == 1
    assert sorted(result.stdout.split("\n")[:-1]) == [f"differs: {document}", f"missing: {vectors / 'README.md'}"]
