"""The command line: JSON output, error messages, exit status and lazy imports."""

import json
import os
import subprocess
import sys
import time

import pytest

from scalesearch.net.complexity import count_complexity
from scalesearch.net.scaling import preset_spec


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scalesearch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_flops_json_matches_library():
    result = run_cli("flops", "--preset", "b1", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    expected = count_complexity(preset_spec("b1"), 1000)
    assert record["params"] == expected.params == 7_794_184
    assert record["flops"] == expected.flops
    assert record["resolution"] == 240
    for key in ("depth_mult", "width_mult", "activations", "flops_ratio", "stages"):
        assert key in record
    stages = record["stages"]
    assert [s["stage"] for s in stages] == ["stem", "1", "2", "3", "4", "5", "6", "7", "head"]
    assert [s["repeats"] for s in stages[1:-1]] == [2, 3, 3, 4, 4, 5, 2]
    assert result.stderr == ""


def test_flops_compound_flags_and_table():
    result = run_cli("flops", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
                     "--base-resolution", "32", "--classes", "10", "--json")
    record = json.loads(result.stdout)
    assert record["resolution"] == round(1.15 * 32)
    assert record["depth_mult"] == 1.2 and record["classes"] == 10
    table = run_cli("flops", "--width", "0.5", "--resolution", "64", "--classes", "10")
    assert table.returncode == 0
    assert "flops_ratio" in table.stdout and "head" in table.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--depth", "0"], "depth multiplier must be a finite number above 0"),
        (["--width", "-1"], "width multiplier must be a finite number above 0"),
        (["--depth", "nan"], "got nan"),
        (["--width", "inf"], "got inf"),
        (["--resolution", "15"], "between 16 and 2048"),
        (["--resolution", "4000"], "got 4000"),
        (["--preset", "b9"], "unknown preset 'b9'"),
        (["--classes", "1"], "classes must be at least 2"),
        (["--preset", "b2", "--width", "2"], "cannot be combined"),
        (["--alpha", "0", "--beta", "1.1"], "alpha must be a finite number above 0"),
    ],
)
def test_bad_input_one_sentence_exit_2(args, fragment):
    result = run_cli("flops", *args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_imports_no_heavy_modules():
    probe = (
        "import sys\n"
        "from scalesearch.cli import app\n"
        "for args in (['--help'], ['flops', '--help']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'fvcore', 'matplotlib', 'optuna', 'pandas')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    assert elapsed < 1.5  # torch alone takes about 2 s to import here


def test_version_and_module_entry():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("scalesearch ")
