"""Matchers to compare a run against, saved in ``save_matcher`` format so ``semmatch eval`` reads them:
the untrained model of the run (same seed, same initial weights as step 0) and the zero-shot nearest-neighbour
baseline on the backbone of the untrained and of the trained model."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from loaders.strict import from_dict
from training.train.manifest import RunManifest

__all__ = ["load_resolved_manifest", "export_comparisons"]


def load_resolved_manifest(run_dir: str | Path) -> RunManifest:
    """The manifest a run recorded (``manifest.resolved.yaml``)."""
    path = Path(run_dir) / "manifest.resolved.yaml"
    return from_dict(RunManifest, yaml.safe_load(path.read_text()), str(path))


def export_comparisons(run_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write ``untrained/``, ``zeroshot_untrained/`` and ``zeroshot_trained/`` under ``out_dir``.

    The untrained model is rebuilt exactly as the trainer builds it (``seed_everything(seed)`` then the model
    hooks), so it holds the weights the run started from.
    """
    from training.model import load_matcher, save_matcher
    from training.train import model_setup
    from training.train.trainer import seed_everything

    m = load_resolved_manifest(run_dir)
    out_dir = Path(out_dir)
    seed_everything(m.seed)
    untrained = model_setup.build(m.model).eval()
    trained = load_matcher(Path(run_dir) / "model")
    paths = {
        "untrained": save_matcher(untrained, out_dir / "untrained"),
        "zeroshot_untrained": save_matcher(model_setup.baseline(untrained), out_dir / "zeroshot_untrained"),
        "zeroshot_trained": save_matcher(model_setup.baseline(trained), out_dir / "zeroshot_trained"),
    }
    with torch.no_grad():  # the trained weights really differ from the start
        a, b = untrained.state_dict(), trained.state_dict()
        if all(torch.equal(a[k], b[k]) for k in a):
            raise RuntimeError(f"{run_dir}: the trained model equals the untrained one")
    return paths
