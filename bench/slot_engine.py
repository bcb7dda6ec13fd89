"""Run the slot-engine micro-benchmark (bench/bench_slots.py, owned separately) if it is there.

Its JSON goes into the report as-is under "slot_engine"; when the script is missing or fails,
the report says so in {"error": ...} and the rest of the benchmark goes on regardless.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "bench_slots.py"


def run_slot_engine(root: Path, json_path: Path, timeout: float = 180.0) -> tuple[Any, str]:
    """(its JSON or {"error": ...}, the table it printed before the JSON)."""
    if not SCRIPT.is_file():
        return {"error": f"{SCRIPT.relative_to(root)} not found"}, ""
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--json", str(json_path)],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}, ""
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no stderr"]
        return {"error": f"exit code {done.returncode}: {tail[0]}"}, ""
    try:
        figures = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return {"error": f"no readable JSON in {json_path.name}: {error}"}, ""
    # The script prints its table, then the JSON starting on a line of its own.
    table: list[str] = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            break
        table.append(line)
    return figures, "\n".join(table)
