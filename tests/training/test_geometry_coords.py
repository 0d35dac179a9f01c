import torch
import torch.nn.functional as F

from training.geometry import norm_to_px, pixel_grid, px_to_norm


def test_px_norm_roundtrip_and_grid_sample_identity():
    h, w = 5, 7
    img = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    g = px_to_norm(pixel_grid(h, w), h, w)[None]
    out = F.grid_sample(img, g, align_corners=False, mode="bilinear")
    assert torch.allclose(out, img)  # sampling at every pixel centre returns the image exactly
    assert torch.allclose(norm_to_px(g, h, w)[0], pixel_grid(h, w), atol=1e-5)
    assert torch.allclose(px_to_norm(torch.tensor([-0.5, -0.5]), h, w), torch.tensor([-1.0, -1.0]))
