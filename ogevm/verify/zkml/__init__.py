"""ZKML verification: a proof that a model's circuit maps the request's inputs to its outputs.

A node proves an inference with ezkl (Halo2 over BN254 with KZG commitments); a validator
checks the proof against the model's verifying key, without the model and without running
it. What is proven is the *quantized* circuit, not onnxruntime's float computation: ezkl
works on integers ``round(x * 2**scale)``, so a ZKML result differs from a VANILLA one by up
to a few quantization steps. The proven outputs are exact dyadic rationals (see
:meth:`CircuitStore.witness`), so a result can be compared with a proof bit for bit.

The API is small and explicit on purpose: ezkl is file based, slow to prepare, and its
error messages and file formats are not a stable interface. Everything that touches ezkl
is in :class:`CircuitStore`, which caches each model's artifacts on disk by CID, checks
every proof itself before ezkl sees it, and turns ezkl's failures into one of two errors:
:class:`~ogevm.errors.ZkmlUnsupported` (this model or input cannot be proven) and
:class:`~ogevm.errors.ProofInvalid` (a proof must be rejected). By concern:

* :mod:`.circuits`: building circuits, their files on disk, quantizing inputs and scaling
  outputs (:class:`~.circuits.CircuitFiles`);
* :mod:`.checker`: checking a proof with the verifying files only (:class:`~.checker.CircuitVerifier`,
  :class:`CircuitProofChecker`, a validator's check of a record);
* :mod:`.prover`: witnesses and proofs (:class:`CircuitStore`, :class:`ZkProver`) and a ZKML
  request's result;
* :mod:`.encoding`: the canonical proof encoding and field elements; :mod:`.backend`: calls
  into ezkl.

Rules a client must reproduce (``docs/SPEC.md`` §9):

* Circuit settings: inputs and outputs public, parameters fixed, every symbolic dimension
  set to 1 (one sample per proof), range checks decomposed in 4 legs of base 128;
  ``calibrate_settings(target="resources", scale_rebase_multiplier=[1])`` on
  :func:`~.circuits.calibration_input`; then hash-ordered lists in the settings sorted (see
  :func:`~.circuits._canonicalize_settings`), so one model and one SRS give one verifying key.
* An input ``x`` at scale ``s`` is the integer ``round_half_away_from_zero(x * 2**s)``.
* A public value is a BN254 scalar-field element ``v`` in ``[0, p)``, 32 bytes little
  endian; it stands for the integer ``n = v`` if ``v <= (p - 1) / 2`` else ``v - p``; an
  output at scale ``s`` is the rational ``n / 2**s``.
* A circuit covers a bounded range: every range-checked value within 2**28 at its scale
  (with scale 13: |value| < 32768), and the inputs of nonlinear lookups (log, sigmoid...)
  within the table calibrated on inputs in [-1, 1] (twice the calibrated range). Requests
  beyond it get :class:`ZkmlUnsupported`, never a proof.
* A proof is stored in its canonical encoding (:func:`encode_proof`), never as ezkl's
  proof file: ezkl reads only some fields of that file, so re-indenting it or changing an
  unread field would give one proof many valid encodings (and one block many bundle roots).
* The SRS is generated locally by ``ezkl.gen_srs``: its secret is known to whoever made it,
  so these proofs only show what they show to someone who trusts that party.
"""

from ogevm.verify.zkml.checker import CircuitProofChecker
from ogevm.verify.zkml.circuits import SRS_LABEL
from ogevm.verify.zkml.encoding import FIELD_MODULUS, decode_proof, encode_proof
from ogevm.verify.zkml.prover import CircuitStore, ZkProver, prove_in_process, request_failures, zk_output

__all__ = [
    "FIELD_MODULUS", "SRS_LABEL", "CircuitProofChecker", "CircuitStore", "ZkProver", "decode_proof",
    "encode_proof", "prove_in_process", "request_failures", "zk_output",
]
