"""PIPE: Parallelized Inference Pre-Execution.

No model runs on the block-building critical path, and validators never run one.

::

    tx ─► TxPool (admission, nonce queues) ─► simulate in CAPTURE ─► requests
                                                      ▲                  │
                     results known so far (rounds) ───┘                  ▼
                                         InferenceExecutor (parallel, batched, signed)
                                                                         │
    block ◄── BlockBuilder: replay in REPLAY, defer divergent txs ◄──────┘
      │
      └─► BlockValidator (another node, no models): bundle root, signatures, order,
          replay, same state root

Responsibilities, one module each:

* ``admission`` – the checks a transaction passes to enter the pool (pluggable).
* ``mempool`` – per-sender nonce queues, replacement (+10%), eviction, and the
  lifecycle every accepted tx goes through: pending, simulated, inferring, ready,
  included; or deferred, rejected with a reason.
* ``simulation`` – where the CAPTURE simulation runs: this process, or workers (processes
  or Ray actors) holding a copy of the chain database kept in sync by each block's changes.
* ``pipeline`` – the rounds: simulate each sender's new txs on the pending state
  (CAPTURE; known results replayed, unknown ones captured), execute what is missing; a
  tx is ready when each of its requests has a result, and the builder's replay hands
  back any request it still misses (bounded rounds); then build.
* ``executor`` – plans requests into jobs (requests for one model stacked into one
  onnxruntime call) and runs them on a pluggable backend: this process's threads by
  default, or Ray actors (``ray_backend``) on several machines.
* ``worker`` – one inference node: runs a job, isolates failures as committed error
  results, signs every result with its own keys (node key, enclave, ZKML proof).
* ``scheduler`` – the next block's scheduled tasks (system calls the inference forks run at
  the top of a block, ``ogevm.vm.scheduler``): simulated and inferred ahead of the block,
  like any transaction's requests.
* ``ordering`` – best transactions first: effective tip, then arrival, nonces in order.
* ``builder`` – replays ready txs with their results under snapshots; a divergence
  (a request without a matching result) rolls the tx back and defers it with the
  later txs of its sender; commits the bundle root in ``extra_data``.
* ``bundle`` – the records a block commits to and their trie root.
* ``validator`` – imports a block with its bundle, never running a model.

Common errors: :class:`~ogevm.errors.TransactionRejected` at admission (its reason is
what clients see), a ``deferred`` / ``rejected`` status with a reason when a tx
diverges too often or its inference does not settle, and
:class:`~ogevm.errors.InvalidBlock` from the validator.
"""
