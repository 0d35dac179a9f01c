"""Pictures of a run from its ``metrics.jsonl``: loss terms over steps, and held-out PCK/EPE over steps with the
zero-shot baseline and the identity warp as reference lines."""

from __future__ import annotations

from pathlib import Path

from training.train.metrics import read_metrics

__all__ = ["plot_run"]


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return [s for s, _ in pts], [v for _, v in pts]


def _ema(values: list[float], alpha: float = 0.1) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else (1 - alpha) * acc + alpha * v
        out.append(acc)
    return out


def plot_run(run_dir: str | Path, out: str | Path, title: str | None = None) -> Path:
    """Write a two-panel PNG (training losses; held-out PCK and EPE) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir, out = Path(run_dir), Path(out)
    records = read_metrics(run_dir / "metrics.jsonl")
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    base = [r for r in records if r["split"] == "baseline"]
    identity = [r for r in records if r["split"] == "identity"]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.8))
    terms = sorted({k for r in train for k in r if k.startswith("loss_")}) + ["objective"]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, k in enumerate(terms):
        x, y = _series(train, k)
        if x:
            c = colours[i % len(colours)]
            ax0.plot(x, y, color=c, lw=0.6, alpha=0.3)
            ax0.plot(x, _ema(y), color=c, label=k.removeprefix("loss_"), lw=1.5 if k == "objective" else 1.1)
    stage_starts = {}
    for r in train:
        stage_starts.setdefault(r.get("stage"), r["step"])
    for name, step in list(stage_starts.items())[1:]:
        ax0.axvline(step, color="grey", ls=":", lw=0.8)
        ax0.text(step, ax0.get_ylim()[1], f" {name}", va="top", fontsize=7, color="grey")
    ax0.set_yscale("log")
    ax0.set_xlabel("step")
    ax0.set_ylabel("training loss (log; faint: raw, bold: EMA 0.1)")
    ax0.legend(fontsize=7)
    ax0.grid(alpha=0.3)

    pck_keys = sorted({k for r in evals for k in r if k.startswith("pck@")})
    for i, k in enumerate(pck_keys):
        x, y = _series(evals, k)
        ax1.plot(x, [100 * v for v in y], marker="o", ms=3, color=colours[i], label=f"model {k}")
        if base and isinstance(base[0].get(k), (int, float)):
            ax1.axhline(100 * base[0][k], color=colours[i], ls="--", lw=0.9, label=f"zero-shot NN {k}")
        if identity and isinstance(identity[0].get(k), (int, float)):
            ax1.axhline(100 * identity[0][k], color=colours[i], ls=":", lw=1.2, label=f"identity warp {k}")
    ax1.set_xlabel("step")
    ax1.set_ylabel("held-out PCK (%)")
    ax1.grid(alpha=0.3)
    if evals:
        ax2 = ax1.twinx()
        x, y = _series(evals, "epe_px")
        ax2.plot(x, y, color="black", lw=0.9, alpha=0.6, label="dense EPE (px)")
        ax2.set_ylabel("dense EPE on valid pixels (px)")
        h1, l1 = ax1.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax1.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    fig.suptitle(title or run_dir.name)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
