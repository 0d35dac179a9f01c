"""The matcher's training losses (docs/design.md §7; reference/vggt.md §1.4).

Every loss takes ``(out, batch, **params)`` with the matcher's output (``grid`` [B, 2, H, W, 2] px, ``conf`` and
``conf_logit`` [B, 2, H, W]) and the loader's batch (docs/interfaces.md §4), and returns a scalar tensor.
:class:`Objective` combines a stage's terms into named values plus ``objective``.
"""

from training.losses.coarse import coarse_loss, coarse_targets
from training.losses.confidence import confidence_loss, confidence_targets
from training.losses.cycle import cycle_loss, cycle_points, reconstruction_loss
from training.losses.dense import dense_epe_loss, matchability_loss
from training.losses.objective import LOSSES, Objective, loss_params
from training.losses.smoothness import smoothness_loss
from training.losses.sparse import keypoint_epe_loss, keypoint_predictions

__all__ = [
    "LOSSES",
    "Objective",
    "loss_params",
    "dense_epe_loss",
    "matchability_loss",
    "keypoint_epe_loss",
    "keypoint_predictions",
    "cycle_loss",
    "cycle_points",
    "reconstruction_loss",
    "confidence_loss",
    "confidence_targets",
    "smoothness_loss",
    "coarse_loss",
    "coarse_targets",
]
