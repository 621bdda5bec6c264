"""``ogevm bench``: run the benchmark scenarios of ``benchmarks/`` side by side.

Every scenario measures a PIPE path against its baseline and its physical limit in the
same run, on the project's own components. For each one this writes
``<out>/<scenario>.json`` (the machine, the configuration, every timing, the targets with
their measured values, and a cProfile summary where a target is not met) and
``<out>/<scenario>.png``, then prints a table of the ratios and targets.

The scenarios live in the repository (``benchmarks/scenarios``), not in the installed
package: run ``ogevm bench`` from a checkout (an editable install finds it by itself).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from ogevm.errors import OgevmError

REPOSITORY = Path(__file__).resolve().parent.parent
BENCHMARKS = REPOSITORY / "benchmarks"
DEFAULT_OUT = BENCHMARKS / "results" / "latest"
SIZES = ("smoke", "quick", "full")


# --- scenarios ----------------------------------------------------------------------------------
def _import_benchmarks() -> ModuleType:
    """The ``benchmarks`` package of the checkout this ogevm runs from."""
    if not (BENCHMARKS / "scenarios" / "__init__.py").exists():
        raise OgevmError(f"{BENCHMARKS} not found: run `ogevm bench` from a checkout of the repository")
    if str(REPOSITORY) not in sys.path:
        sys.path.insert(0, str(REPOSITORY))
    package = importlib.import_module("benchmarks")
    found = Path(package.__file__).resolve().parent
    if found != BENCHMARKS:
        raise OgevmError(f"another 'benchmarks' package is imported ({found}); expected {BENCHMARKS}")
    return package


def scenario_names() -> tuple[str, ...]:
    """Every scenario, in the order ``ogevm bench`` runs them."""
    _import_benchmarks()
    return importlib.import_module("benchmarks.scenarios").SCENARIOS


def load_scenario(name: str) -> ModuleType:
    """The module of scenario ``name``. Raises OgevmError for an unknown name."""
    names = scenario_names()
    if name not in names:
        raise OgevmError(f"unknown scenario {name!r}; scenarios: {', '.join(names)}")
    return importlib.import_module(f"benchmarks.scenarios.{name}")


# --- what the numbers were measured on ------------------------------------------------------------
def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    """Output of a read-only git command in the checkout, or None."""
    try:
        out = subprocess.run(["git", *args], cwd=REPOSITORY, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """The machine, the software versions and the commit the numbers come from."""
    import numpy
    import onnxruntime

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnxruntime": onnxruntime.__version__,
        "py-evm": _version("py-evm"),
        "coincurve": _version("coincurve"),
        "ezkl": _version("ezkl"),
        "ogevm": _version("ogevm"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }


# --- running ------------------------------------------------------------------------------------
class Reporter:
    """What a scenario tells the runner while it runs: its amount of work, then each part
    done. Without a rich progress bar it only keeps count (tests)."""

    def __init__(self, progress=None, task=None, name: str = "") -> None:
        self.progress, self.task, self.name = progress, task, name
        self.steps = 0.0
        self.done = 0.0

    def total(self, steps: float) -> None:
        self.steps = steps
        if self.progress is not None:
            self.progress.update(self.task, total=steps)

    def step(self, description: str | None = None, advance: float = 1) -> None:
        self.done += advance
        if self.progress is not None:
            self.progress.update(self.task, advance=advance,
                                 **({"description": self._label(description)} if description else {}))

    def note(self, description: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=self._label(description))

    def _label(self, description: str) -> str:
        return f"{self.name}: {description}" if self.name else description


def run_scenario(name: str, size: str = "quick", reporter: Reporter | None = None,
                 machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run scenario ``name`` at ``size`` (``smoke``, ``quick`` or ``full``) in this process.

    ``machine`` is what :func:`machine_info` said when the code was loaded (the commit may
    move while a long run goes on); by default it is read now, with the date of the start.

    Returns its JSON-ready result: ``scenario``, ``title``, ``size``, ``machine``,
    ``config``, ``results``, ``targets``, ``table``, ``wall_s`` (and ``profile`` when a
    target is not met).
    """
    if size not in SIZES:
        raise OgevmError(f"unknown size {size!r}; sizes: {', '.join(SIZES)}")
    module = load_scenario(name)
    config = dict(module.SIZES[size])
    machine = dict(machine) if machine is not None else machine_info()
    machine["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    outcome = module.run(config, reporter or Reporter())
    wall = time.perf_counter() - start
    result = {"scenario": name, "title": module.TITLE, "size": size, "machine": machine, "config": config,
              **outcome, "wall_s": wall,
              "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    return json.loads(json.dumps(result, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def write_result(result: dict[str, Any], out: Path) -> list[Path]:
    """Write ``<scenario>.json`` and, with matplotlib, ``<scenario>.png``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    name = result["scenario"]
    written = []
    image = out / f"{name}.png"
    plot_error = None
    try:
        import matplotlib

        matplotlib.use("Agg")
        load_scenario(name).plot(result, image)
        written.append(image)
        result["plot"] = image.name
    except ImportError:
        plot_error = "matplotlib is not installed: pip install 'ogevm[bench]'"
    except Exception as exc:  # a plot must not lose the measurements
        plot_error = f"plot failed: {type(exc).__name__}: {exc}"
    if plot_error is not None:
        result["plot_error"] = plot_error
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    written.insert(0, path)
    return written


# --- the table ------------------------------------------------------------------------------------
def _value(value: Any, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if unit == "x":
        return f"{value:.3g}x" if abs(value) < 100 else f"{value:,.0f}x"
    if unit in ("us", "ms", "s"):
        return f"{value:,.1f} {unit}" if abs(value) < 1000 else f"{value:,.0f} {unit}"
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:,.3g} {unit}".strip()


def _threshold(t: dict[str, Any]) -> str:
    if t["op"] == "between":
        low, high = t["threshold"]
        return f"{_value(low, t['unit'])}..{_value(high, t['unit'])}"
    return f"{t['op']} {_value(t['threshold'], t['unit'])}"


def summary_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The printed table as rows: every ratio and every target of every scenario."""
    rows = []
    for result in results:
        if "error" in result:
            rows.append({"scenario": result["scenario"], "measurement": "failed", "value": "",
                         "target": "", "status": "error", "note": result["error"].splitlines()[-1]})
            continue
        for t in result.get("targets", []):
            rows.append({"scenario": result["scenario"], "measurement": t["target"],
                         "value": _value(t["value"], t["unit"]), "target": _threshold(t),
                         "status": t["status"], "note": t.get("context", "")})
        for r in result.get("table", []):
            rows.append({"scenario": result["scenario"], "measurement": r["label"],
                         "value": _value(r["value"], r["unit"]), "target": "", "status": "",
                         "note": r.get("note", "")})
    return rows


def print_table(results: Sequence[dict[str, Any]], console) -> None:
    from rich.table import Table

    table = Table(title="ogevm bench: ratios measured side by side in this run", show_lines=False)
    for column, style in (("scenario", "cyan"), ("measurement", ""), ("value", "bold"), ("target", ""),
                          ("status", ""), ("note", "dim")):
        table.add_column(column, style=style, overflow="fold")
    previous = None
    for r in summary_rows(results):
        status = {"met": "[green]met[/green]", "not met": "[red]not met[/red]", "n/a": "[yellow]n/a[/yellow]",
                  "error": "[red]error[/red]"}.get(r["status"], r["status"])
        if previous is not None and r["scenario"] != previous:
            table.add_section()
        table.add_row(r["scenario"] if r["scenario"] != previous else "", r["measurement"], r["value"], r["target"],
                      status, r["note"])
        previous = r["scenario"]
    # Piped or logged output has no terminal width (80 by default): keep the table readable.
    width = console.width
    if not console.is_terminal:
        console.width = max(width, 200)
    try:
        console.print(table)
    finally:
        console.width = width


def summary_markdown(results: Sequence[dict[str, Any]]) -> str:
    """The table as Markdown (``summary.md`` next to the JSON files)."""
    lines = ["| scenario | measurement | value | target | status | note |", "|---|---|---|---|---|---|"]
    for r in summary_rows(results):
        cells = [r[k].replace("|", "\\|") for k in ("scenario", "measurement", "value", "target", "status", "note")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(out: Path) -> Path:
    """``summary.md``: the table of every scenario JSON in ``out`` (the latest run of each),
    with when, where and how long each ran."""
    results = []
    for name in scenario_names():
        path = out / f"{name}.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
    lines = ["| scenario | size | date (UTC) | commit | CPUs | wall s |", "|---|---|---|---|---|---|"]
    for r in results:
        m = r.get("machine", {})
        wall = f"{r['wall_s']:.0f}" if "wall_s" in r else "failed"
        lines.append(f"| {r['scenario']} | {r.get('size', '')} | {m.get('date', '')} | "
                     f"{(m.get('git_commit') or '?')[:10]}{' (modified)' if m.get('git_dirty') else ''} | "
                     f"{m.get('cpus_available', '')} x {m.get('cpu_model', '')} | {wall} |")
    path = out / "summary.md"
    path.write_text("# ogevm bench results\n\n" + "\n".join(lines) + "\n\n" + summary_markdown(results))
    return path


# --- the command ----------------------------------------------------------------------------------
def run_bench(quick: bool = False, out: Path | None = None, scenarios: Sequence[str] | None = None,
              console=None, size: str | None = None) -> int:
    """``ogevm bench``: run the scenarios with a progress bar, write the results, print the
    table. Returns the exit status (1 if a scenario failed; unmet targets are results)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = console or Console()
    size = size or ("quick" if quick else "full")
    names = list(scenarios) if scenarios else list(scenario_names())
    for name in names:
        load_scenario(name)  # unknown names fail before anything runs
    out = Path(out) if out is not None else DEFAULT_OUT
    machine = machine_info()
    console.print(f"[bold]ogevm bench[/bold] ({size}): {len(names)} scenario(s) on {machine['cpu_model']}, "
                  f"{machine['cpus_available']} CPUs, load {_load(machine['load_average'])}; "
                  f"commit {(machine['git_commit'] or '?')[:10]}{' (modified)' if machine['git_dirty'] else ''}; "
                  f"results to {out}")
    results, failed = [], False
    start = time.perf_counter()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task(f"{len(names)} scenarios", total=len(names))
        for name in names:
            task = progress.add_task(name, total=1)
            reporter = Reporter(progress, task, name)
            try:
                result = run_scenario(name, size, reporter, machine)
            except Exception as exc:  # report it and go on with the other scenarios
                failed = True
                result = {"scenario": name, "size": size, "machine": machine,
                          "error": "".join(traceback.format_exception(exc))}
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
                progress.console.print(f"[red]{name} failed:[/red] {type(exc).__name__}: {exc}")
            else:
                write_result(result, out)
                progress.update(task, completed=reporter.steps or 1, total=reporter.steps or 1,
                                description=f"{name}: done in {result['wall_s']:.0f} s")
            results.append(result)
            progress.update(overall, advance=1)
    elapsed = time.perf_counter() - start
    print_table(results, console)
    write_summary(out)
    console.print(f"{len(results)} scenario(s) in {elapsed:.0f} s; JSON and PNG files in {out}")
    return 1 if failed else 0


def _load(values) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"
