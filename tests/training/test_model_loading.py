"""Checkpoint loading: .pt and .safetensors, prefixes, strictness, and errors that name the offending keys."""

import pytest
import torch
from safetensors.torch import save_file

from training.model import VGGT, CheckpointMismatchError, VGGTConfig, load_vggt, read_state_dict


@pytest.fixture(scope="module")
def tiny_vggt():
    torch.manual_seed(0)
    return VGGT(VGGTConfig.tiny()).eval()


@pytest.fixture(scope="module")
def reference_outputs(tiny_vggt):
    images = torch.rand(2, 3, 56, 70)
    return images, _outputs(tiny_vggt, images)


def _outputs(model, images):
    with torch.no_grad():
        out = model(images, query_points=torch.tensor([[10.0, 20.0], [30.0, 5.0]]))
    return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "pt_module_prefix", "pt_model_wrapper"])
def test_load_reproduces_outputs(tiny_vggt, reference_outputs, tmp_path, fmt):
    state = tiny_vggt.state_dict()
    path = tmp_path / ("model.safetensors" if fmt == "safetensors" else "model.pt")
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "pt_module_prefix":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    elif fmt == "pt_model_wrapper":
        torch.save({"model": state, "epoch": 3}, path)
    else:
        torch.save(state, path)
    loaded = load_vggt(path, VGGTConfig.tiny())
    images, ref = reference_outputs
    got = _outputs(loaded, images)
    assert set(ref) == set(got) >= {"pose_enc", "depth", "depth_conf", "world_points", "world_points_conf", "track"}
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    assert not loaded.aggregator.patch_embed.mask_token.requires_grad


def test_mismatch_names_missing_unexpected_and_misshaped_keys(tiny_vggt, tmp_path):
    state = dict(tiny_vggt.state_dict())
    del state["aggregator.camera_token"]
    state["aggregator.extra.weight"] = torch.zeros(3)
    state["depth_head.norm.weight"] = torch.zeros(5)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as err:
        load_vggt(path, VGGTConfig.tiny())
    msg = str(err.value)
    assert "bad.pt" in msg
    assert "1 missing: aggregator.camera_token" in msg
    assert "1 unexpected: aggregator.extra.weight" in msg
    assert "depth_head.norm.weight checkpoint (5,) vs model (64,)" in msg


def test_disabled_head_keys_are_skipped_and_reported(tiny_vggt, tmp_path, caplog):
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_vggt.state_dict().items()}, str(path))
    with caplog.at_level("WARNING"):
        model = load_vggt(path, VGGTConfig.tiny(enable_track=False))
    assert model.track_head is None
    assert "skipped (disabled modules): track_head." in caplog.text
    n_track = sum(1 for k in tiny_vggt.state_dict() if k.startswith("track_head."))
    assert f"{n_track} skipped" in caplog.text


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        read_state_dict(tmp_path / "nope.pt")
