"""Start-up of `charge-station replay`: whole-process time and peak RSS against `python -c pass`.

Each round runs, one after the other, the bare interpreter (`python -c pass`), the installed
console script (`charge-station replay --config examples/station.toml examples/day.txt --json`)
and the same through `python -m server.cli`; the rounds interleave so that all three see the
same machine. Each runs in two states of the bytecode cache, both in private
PYTHONPYCACHEPREFIX directories (the checkout's own __pycache__ is neither read nor written):

- cached: every module's bytecode is there, as in any installation made by pip (it compiles
  at install time) and in a checkout run once with bytecode writing on;
- source: the same without the project's own modules, and PYTHONDONTWRITEBYTECODE=1: they are
  compiled from source on every run, as an editable install is when that variable is set.

Every child is started by a small helper process (`python -S -I`, built-in modules only) that
times it from spawn to exit and reads its peak RSS from wait4(). A child inherits the peak of
the process that spawned it (the kernel carries it over the exec), so a big parent would inflate
every figure; the helper's own peak is reported as `floor_rss_mib`.

    .venv/bin/python bench/replay_startup.py [--runs 20]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "examples/station.toml"
EVENTS = "examples/day.txt"
TARGET_ABOVE_INTERPRETER_S = 0.03
TARGET_PEAK_RSS_MIB = 18.0

# Run by `python -S -I -c`: no site and only built-in modules, so that its own peak stays below
# the interpreter's and cannot hide a child's. The plan comes on stdin, marshalled.
HELPER = """
import marshal, os, sys, time
PLAN = marshal.loads(sys.stdin.buffer.read())
null = os.open(os.devnull, os.O_WRONLY)
quiet = [(os.POSIX_SPAWN_DUP2, null, 1)]
for index, argv, env in PLAN:
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=quiet)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    print(index, repr(seconds), usage.ru_maxrss, os.waitstatus_to_exitcode(status))
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("floor", line.split()[1])
"""


def commands(python: str) -> dict[str, list[str]]:
    replay = ["replay", "--config", CONFIG, EVENTS, "--json"]
    script = str(Path(python).parent / "charge-station")
    return {
        "interpreter": [python, "-c", "pass"],
        "script": [script, *replay],
        "module": [python, "-m", "server.cli", *replay],
    }


def environments(cache_dir: Path) -> dict[str, dict[str, str]]:
    """The children's environments, by state of the bytecode cache; the caches are filled here."""
    base = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    cached = {**base, "PYTHONPYCACHEPREFIX": str(cache_dir / "cached")}
    for argv in commands(sys.executable).values():  # bytecode of everything the runs import
        subprocess.run(argv, env=cached, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    # The same cache without the checkout's own packages (the venv's are kept).
    shutil.copytree(cache_dir / "cached", cache_dir / "source")
    own = cache_dir / "source" / ROOT.relative_to(ROOT.anchor)
    for entry in own.iterdir():
        if entry.name != ".venv":
            shutil.rmtree(entry)
    source = {**base, "PYTHONPYCACHEPREFIX": str(cache_dir / "source")}
    source["PYTHONDONTWRITEBYTECODE"] = "1"
    return {"cached": cached, "source": source}


def check_output(cmds: dict[str, list[str]], env: dict[str, str]) -> int:
    """Both ways of running the replay print the same JSON; its size in bytes. Not timed."""
    outputs = [
        subprocess.run(cmds[name], env=env, cwd=ROOT, capture_output=True, check=True).stdout
        for name in ("script", "module")
    ]
    assert outputs[0] == outputs[1], "the console script and python -m print different output"
    json.loads(outputs[0])
    return len(outputs[0])


def measure(
    cmds: dict[str, list[str]], envs: dict[str, dict[str, str]], runs: int
) -> tuple[dict[tuple[str, str], list[tuple[float, int]]], int]:
    """(seconds, peak RSS in KiB) of every run, keyed by (environment, command); the helper's
    own peak RSS in KiB."""
    keys = [(env_name, cmd_name) for env_name in envs for cmd_name in cmds]
    plan = [
        (i, cmds[cmd_name], envs[env_name])
        for _ in range(runs)
        for i, (env_name, cmd_name) in enumerate(keys)
    ]
    done = subprocess.run(
        [sys.executable, "-S", "-I", "-c", HELPER],
        input=marshal.dumps(plan),
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    results: dict[tuple[str, str], list[tuple[float, int]]] = {key: [] for key in keys}
    floor_kib = 0
    for line in done.stdout.decode().splitlines():
        fields = line.split()
        if fields[0] == "floor":
            floor_kib = int(fields[1])
            continue
        index, seconds, rss_kib, code = int(fields[0]), float(fields[1]), int(fields[2]), fields[3]
        assert code == "0", f"{keys[index]} exited with {code}"
        results[keys[index]].append((seconds, rss_kib))
    return results, floor_kib


def summary(runs: list[tuple[float, int]]) -> dict[str, float]:
    seconds = [s for s, _ in runs]
    return {
        "min_s": round(min(seconds), 4),
        "median_s": round(statistics.median(seconds), 4),
        "max_s": round(max(seconds), 4),
        "peak_rss_mib": round(max(rss for _, rss in runs) / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="rounds (default 20)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    cmds = commands(sys.executable)
    with tempfile.TemporaryDirectory(prefix="replay-startup-pyc-") as cache_dir:
        envs = environments(Path(cache_dir))
        output_bytes = check_output(cmds, envs["source"])
        measure(cmds, envs, 1)  # warm the page cache; not counted
        results, floor_kib = measure(cmds, envs, args.runs)

    report: dict[str, Any] = {"runs": args.runs, "output_bytes": output_bytes}
    for env_name in envs:
        figures = {name: summary(results[env_name, name]) for name in cmds}
        base = figures["interpreter"]["median_s"]
        for name in ("script", "module"):
            figures[name]["above_interpreter_s"] = round(figures[name]["median_s"] - base, 4)
            print(
                f"{env_name:>8} {name:>6}: {figures[name]['min_s']:.4f} / "
                f"{figures[name]['median_s']:.4f} / {figures[name]['max_s']:.4f} s "
                f"(min / median / max), {figures[name]['above_interpreter_s']:+.4f} s on "
                f"`python -c pass` ({base:.4f} s), peak {figures[name]['peak_rss_mib']} MiB "
                f"(interpreter {figures['interpreter']['peak_rss_mib']} MiB)"
            )
        report[env_name] = figures
    report["floor_rss_mib"] = round(floor_kib / 1024, 1)
    script = report["cached"]["script"]
    report["target"] = {
        "above_interpreter_s": TARGET_ABOVE_INTERPRETER_S,
        "peak_rss_mib": TARGET_PEAK_RSS_MIB,
        "met_cached": script["above_interpreter_s"] <= TARGET_ABOVE_INTERPRETER_S
        and script["peak_rss_mib"] < TARGET_PEAK_RSS_MIB,
    }
    report["machine"] = {
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
