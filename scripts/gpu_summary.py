"""Summarise one scripts/gpu_check.sh run: the speed ladder, the trainer's throughput windows and the GPU tier.

    python scripts/gpu_summary.py OUT_DIR        # reads speed_ladder.json, metrics.jsonl, pytest_gpu.log there

Trainer throughput is aggregated over the first stage's log windows after its first one (which holds the
compilation and the loader start): pairs/s = pairs / time, MFU and data wait time-weighted, peak memory the max.
Prints Markdown; writes ``summary.json`` beside the inputs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def ladder_table(path: Path) -> tuple[list[str], dict]:
    if not path.is_file():
        return [f"(no {path.name})"], {}
    data = json.loads(path.read_text())
    env = data["env"]
    lines = [
        f"speed ladder: {env.get('device')} | torch {env.get('torch')} | {env.get('preset')} @ {env.get('size')} | "
        f"{env.get('grid_mode')} head | {env.get('date')}",
        f"bf16 head vs fp32 head: {json.dumps(data.get('accuracy_bf16_head'))}",
        "",
        "| rung | pairs | ms / pair | pairs/s | MFU | peak GiB | x reference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["rows"]:
        if "error" in r:
            lines.append(f"| {r['rung']} | {r['batch']} | {r['error']} | | | | |")
            continue
        mfu = f"{100 * r['mfu']:.1f} %" if r.get("mfu") is not None else "-"
        lines.append(
            f"| {r['rung']} | {r['batch']} | {r['ms_per_pair']:.1f} | {r['pairs_per_s']:.2f} | {mfu} | "
            f"{r['peak_mem_gib']:.1f} | {r['x_reference']:.2f} |"
        )
    return lines, data


def trainer_windows(path: Path) -> tuple[list[str], dict]:
    if not path.is_file():
        return [f"(no {path.name})"], {}
    records = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    train = [r for r in records if r.get("split") == "train"]
    if not train:
        return ["(no train records)"], {}
    first_stage = train[0]["stage"]
    windows = [r for r in train if r["stage"] == first_stage][1:]
    lines = [
        "| step | stage | pairs/s | data wait | MFU | peak GiB | step ms | loss |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in train:
        mfu = f"{100 * r['mfu']:.1f} %" if isinstance(r.get("mfu"), float) else "-"
        lines.append(
            f"| {r['step']} | {r['stage']} | {r['pairs_per_s']:.2f} | {100 * r['data_wait']:.1f} % | {mfu} | "
            f"{r.get('peak_mem_gib', float('nan')):.1f} | {r['step_ms']:.0f} | {r['objective']:.4g} |"
        )
    summary: dict = {}
    if windows:
        steps = [r["step"] for r in windows]
        n = [b - a for a, b in zip([train[0]["step"]] + steps[:-1], steps)]
        secs = [k * r["step_ms"] / 1e3 for k, r in zip(n, windows)]
        total = sum(secs)
        pairs = sum(r["pairs_per_s"] * s for r, s in zip(windows, secs))
        summary = {
            "stage": first_stage,
            "steps_measured": sum(n),
            "seconds": total,
            "pairs_per_s": pairs / total,
            "data_wait": sum(r["data_wait"] * s for r, s in zip(windows, secs)) / total,
            "mfu": sum(r.get("mfu", 0.0) * s for r, s in zip(windows, secs)) / total if "mfu" in windows[0] else None,
            "peak_mem_gib": max(r.get("peak_mem_gib", 0.0) for r in windows),
        }
        mfu = f"{100 * summary['mfu']:.1f} %" if summary["mfu"] is not None else "-"
        lines += [
            "",
            f"trainer, stage {first_stage}, steps {windows[0]['step'] - n[0] + 1}-{windows[-1]['step']} "
            f"({summary['steps_measured']} steps, {total:.1f} s): {summary['pairs_per_s']:.2f} pairs/s, MFU {mfu}, "
            f"data wait {100 * summary['data_wait']:.1f} %, peak {summary['peak_mem_gib']:.1f} GiB",
        ]
    evals = [r for r in records if r.get("split") in ("eval", "final")]
    lines += [
        f"{r['split']} @ {r['step']}: " + json.dumps({k: v for k, v in r.items() if k not in ("time",)}) for r in evals
    ]
    return lines, summary


def pytest_result(path: Path) -> list[str]:
    if not path.is_file():
        return [f"(no {path.name})"]
    text = path.read_text(errors="replace")
    keep = [line for line in text.splitlines() if line.startswith("[gpu tier]")]
    final = re.findall(r"=+ (.*(?:passed|failed|error).*) =+", text)
    return keep + [f"pytest -m gpu: {final[-1] if final else 'no result line'}"]


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("out/gpu_check")
    ladder_lines, ladder = ladder_table(out / "speed_ladder.json")
    train_lines, train = trainer_windows(out / "metrics.jsonl")
    print("\n".join(["## speed ladder", *ladder_lines, "", "## trainer", *train_lines, "", "## gpu tier"]))
    print("\n".join(pytest_result(out / "pytest_gpu.log")))
    (out / "summary.json").write_text(json.dumps({"trainer": train, "ladder_env": ladder.get("env")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
