"""The benchmark scenarios of ``ogevm bench``: what PIPE buys, measured side by side.

``benchmarks.scenarios`` holds one module per scenario; ``benchmarks.common`` the helpers
they share. ``ogevm bench`` (``ogevm/bench.py``) runs them, writes one JSON and one plot
per scenario and prints the ratios. See ``benchmarks/README.md``.
"""
