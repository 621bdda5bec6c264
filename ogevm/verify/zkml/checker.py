"""Checking ZKML proofs with what a validator holds: a circuit's verifying files and its SRS
(no model, no proving key)."""

from __future__ import annotations

from fractions import Fraction
from typing import Mapping, Sequence

import numpy as np

from ogevm.abi.types import ModelOutput
from ogevm.errors import ProofInvalid
from ogevm.tensors import number_to_fraction
from ogevm.verify.zkml.backend import ezkl_module, first_line
from ogevm.verify.zkml.circuits import CircuitFiles, CircuitInfo


class CircuitVerifier(CircuitFiles):
    """Circuit files that check proofs (:meth:`verify`): all a validator's store needs."""

    def verify(
        self,
        cid: str,
        proof: bytes,
        expected_outputs: Sequence[np.ndarray],
        feeds: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Accept ``proof`` as a proof that the circuit of ``cid`` outputs ``expected_outputs``.

        ``expected_outputs`` must equal the proven outputs exactly (``n / 2**scale``, see
        :meth:`witness`), with the same shapes. With ``feeds``, the proof's public inputs
        must also be the quantized ``feeds`` (without them a proof for *any* input is
        accepted: pass them whenever the request is known).

        Raises KeyError if ``cid`` is not prepared, and :class:`ProofInvalid` when the proof
        is not in its canonical encoding (ezkl's proof file included), its public values
        differ from the expected ones, or ezkl rejects it (including a proof made for another
        model's circuit).
        """
        info = self.info(cid)
        snark, (inputs, outputs) = self._parse(info, proof)
        _check_outputs(info, outputs, expected_outputs)
        if feeds is not None:
            quantized = self._quantize_inputs(info, feeds, error=ProofInvalid)
            for name, got, want in zip(info.input_names, inputs, quantized):
                if got != want:
                    raise ProofInvalid(f"the proof is for another value of input {name!r}")
        self._ezkl_verify(info, snark)
        # ezkl stops reading at the proof's end and ignores what follows: without this, one
        # proof would have as many valid encodings as byte strings it can be followed by.
        try:
            self._ezkl_verify(info, {**snark, "proof": snark["proof"][:-1]})
        except ProofInvalid:
            return
        raise ProofInvalid("the proof has bytes after its end")

    def _ezkl_verify(self, info: CircuitInfo, snark: dict) -> None:
        """Raise :class:`ProofInvalid` unless ezkl accepts the proof file ``snark``."""
        with self._scratch(info.cid) as scratch:
            path = scratch.write("verify", snark)
            try:
                ok = ezkl_module().verify(
                    proof_path=str(path), settings_path=str(self._path(info.cid, "settings.json")),
                    vk_path=str(self._path(info.cid, "vk.key")),
                    srs_path=str(self._srs_path(info.logrows)))
            except Exception as exc:  # ezkl raises RuntimeError, ValueError, panics...
                raise ProofInvalid(f"ezkl rejected the proof: {first_line(exc)}") from exc
        if ok is not True:
            raise ProofInvalid("ezkl rejected the proof")


def _check_outputs(info: CircuitInfo, proven: list[list[int]], expected: Sequence[np.ndarray]) -> None:
    if len(expected) != len(proven):
        raise ProofInvalid(f"{len(expected)} expected outputs; the circuit has {len(proven)}")
    for index, (ints, scale, shape, want) in enumerate(
        zip(proven, info.output_scales, info.output_shapes, expected)
    ):
        want = np.asarray(want)
        if want.shape != shape:
            raise ProofInvalid(f"expected output {index} has shape {list(want.shape)}; the circuit's is {list(shape)}")
        unit = Fraction(2) ** scale
        for position, (n, value) in enumerate(zip(ints, want.reshape(-1).tolist())):
            if isinstance(value, float) and not np.isfinite(value):
                raise ProofInvalid(f"expected output {index} contains NaN or infinity")
            if Fraction(value) * unit != n:
                raise ProofInvalid(
                    f"output {index}[{position}] is {Fraction(n) / unit} in the proof, not {value}"
                )


def expected_outputs(output: ModelOutput) -> list[np.ndarray]:
    """The arrays a ZKML ``output`` claims, for :meth:`CircuitStore.verify`."""
    arrays = []
    for tensor in output.numbers:
        values = [number_to_fraction(number) for number in tensor.values]
        if all(value.denominator == 1 for value in values):
            arrays.append(np.array([int(v) for v in values], dtype=np.int64).reshape(tensor.shape))
        else:
            arrays.append(np.array([float(v) for v in values], dtype=np.float64).reshape(tensor.shape))
    return arrays


class CircuitProofChecker:
    """A validator's ZKML check against a circuit store's verifying keys."""

    def __init__(self, circuits: CircuitVerifier) -> None:
        self.circuits = circuits

    def vk_hash(self, model_cid: str) -> bytes:
        try:
            return self.circuits.info(model_cid).vk_hash
        except KeyError:
            return b""

    def check(self, record, feeds: Mapping[str, np.ndarray]) -> None:
        """Raise :class:`ProofInvalid` unless ``record.proof`` proves its output for ``feeds``."""
        try:
            self.circuits.verify(record.model_cid, record.proof, expected_outputs(record.result.output), feeds)
        except KeyError as exc:
            raise ProofInvalid(f"no circuit for model {record.model_cid}") from exc
