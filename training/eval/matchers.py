"""Resolving ``--checkpoint`` into something that answers the matcher call (docs/interfaces.md §5).

* a checkpoint folder or file (``model.safetensors`` + ``model_config.json``): ``training.model.io.load_matcher``;
* ``zero-shot:<vggt weights | tiny>``: the model part's zero-shot nearest-neighbour baseline;
* ``sift`` or ``sift:step=4,sizes=8/16``: the dense SIFT baseline (:mod:`training.baselines.sift`);
* ``identity``: the identity warp (:mod:`training.baselines.identity`), the trivial prior.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["load_eval_matcher", "describe_matcher"]


def _sift(options: str):
    from training.baselines.sift import DenseSiftMatcher

    kwargs: dict = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key == "step":
            kwargs["step"] = int(value)
        elif key == "sizes":
            kwargs["sizes"] = tuple(float(v) for v in value.split("/"))
        elif key == "metric":
            kwargs["metric"] = value
        else:
            raise ValueError(f"unknown sift option {key!r} (step=, sizes=a/b/c, metric=cosine|l2)")
    return DenseSiftMatcher(**kwargs)


def _zero_shot(weights: str, device: torch.device):
    """``tiny``/``small``: randomly initialised test configs; anything else: a VGGT-1B checkpoint file."""
    from training.model.baseline import NearestNeighbourMatcher, NNBaselineConfig
    from training.model.config import VGGTConfig

    if weights in ("tiny", "small"):
        return NearestNeighbourMatcher(NNBaselineConfig(vggt=getattr(VGGTConfig, weights)()))
    if not weights or not Path(weights).is_file():
        raise FileNotFoundError(f"zero-shot:{weights}: no such VGGT weights file (or use zero-shot:tiny)")
    model = NearestNeighbourMatcher(NNBaselineConfig())
    try:
        model.load_vggt_weights(weights)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as e:  # a truncated or corrupted file: torch and safetensors raise their own types
        raise ValueError(f"{weights}: not readable VGGT weights ({type(e).__name__}: {e})") from e
    return model


def load_eval_matcher(spec: str, device: str | torch.device = "cpu"):
    """The matcher named by ``spec`` (see the module docstring), in eval mode on ``device``."""
    device = torch.device(device)
    if spec == "sift" or spec.startswith("sift:"):
        return _sift(spec.partition(":")[2])
    if spec == "identity":
        from training.baselines.identity import IdentityMatcher

        return IdentityMatcher()
    if spec.startswith("zero-shot:") or spec == "zero-shot":
        model = _zero_shot(spec.partition(":")[2], device)
    else:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no such checkpoint (or use 'sift' / 'identity' / 'zero-shot:<weights|tiny>')"
            )
        model = _load_checkpoint(path, device)
    return model.to(device).eval()


def _load_checkpoint(path: Path, device: torch.device):
    """``load_matcher``, with a damaged file named in one line (a ``ValueError``) whatever its reader raised."""
    from training.model.checkpoint import CheckpointMismatchError
    from training.model.io import CONFIG_NAME, WEIGHTS_NAME, load_matcher

    try:
        return load_matcher(path, map_location=device)
    except (FileNotFoundError, CheckpointMismatchError):
        raise
    except Exception as e:  # a truncated or corrupted file: SafetensorError, JSONDecodeError, KeyError, ...
        in_weights = type(e).__name__ == "SafetensorError" or isinstance(e, (OSError, RuntimeError))
        bad = (path if path.is_dir() else path.parent) / (WEIGHTS_NAME if in_weights else CONFIG_NAME)
        raise ValueError(f"{bad}: not a readable matcher checkpoint ({type(e).__name__}: {e})") from e


def describe_matcher(spec: str) -> str:
    """A short label for tables and plots."""
    return spec if not Path(spec).exists() else Path(spec).resolve().name
