"""Reading criterion's results (target/criterion) for the bench scripts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Criterion replaces these characters by '_' in directory names.
CRITERION_UNSAFE = re.compile(r'[/\\?"<>:*|^]')


def criterion_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else REPO / "target") / "criterion"


def read_estimate_ns(bench_id: str) -> tuple[float, Path] | None:
    """Mean point estimate of a criterion benchmark, found by its full id."""
    root = criterion_dir()
    safe = CRITERION_UNSAFE.sub("_", bench_id)
    for meta in sorted(root.glob("**/new/benchmark.json")):
        try:
            full_id = json.loads(meta.read_text()).get("full_id")
        except (OSError, json.JSONDecodeError):
            full_id = None
        rel = meta.parent.parent.relative_to(root).as_posix()
        if full_id == bench_id or CRITERION_UNSAFE.sub("_", rel) == safe:
            estimates = meta.parent / "estimates.json"
            if estimates.exists():
                mean = json.loads(estimates.read_text())["mean"]["point_estimate"]
                return float(mean), estimates
    return None
