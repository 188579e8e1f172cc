"""Batched augmentation: shapes, ranges, and that each part does what it says."""

from __future__ import annotations

import torch

from dan_core.data.augment import AugmentConfig, augment, to_float

OFF = AugmentConfig(flip=0.0, rotation=0.0, scale=(1.0, 1.0), translate=0.0, brightness=0.0, contrast=0.0, erase_p=0.0)


def test_identity_config_only_resizes() -> None:
    images = torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8)
    out = augment(images, 48, OFF)
    assert out.shape == (4, 3, 48, 48)
    assert torch.allclose(out, images.float() / 255, atol=1e-4)


def test_flip_mirrors_the_image() -> None:
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    cfg = AugmentConfig(**{**OFF.__dict__, "flip": 1.0})
    assert torch.allclose(augment(images, 32, cfg), images.flip(-1).float() / 255, atol=1e-4)


def test_grey_batches_come_out_as_three_equal_channels_at_the_target_size() -> None:
    images = torch.randint(0, 256, (5, 1, 48, 48), dtype=torch.uint8)
    out = augment(images, 112, AugmentConfig(erase_p=1.0))
    assert out.shape == (5, 3, 112, 112)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    rgb = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8)
    grey = to_float(rgb, 20, gray=True)
    assert torch.equal(grey[:, 0], grey[:, 2])


def test_random_erasing_changes_a_rectangle_and_generator_makes_it_repeatable() -> None:
    images = torch.full((8, 3, 64, 64), 128, dtype=torch.uint8)
    cfg = AugmentConfig(**{**OFF.__dict__, "erase_p": 1.0})
    a = augment(images, 64, cfg, gen=torch.Generator().manual_seed(3))
    b = augment(images, 64, cfg, gen=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    changed = (a - 128 / 255).abs().sum(dim=1) > 1e-3  # (B, H, W)
    frac = changed.float().mean(dim=(1, 2))
    assert (frac > 0.005).all() and (frac < 0.3).all()


def test_rotation_moves_pixels_but_keeps_the_centre() -> None:
    images = torch.zeros(1, 1, 65, 65, dtype=torch.uint8)
    images[..., 32, :] = 255  # a horizontal line through the centre
    cfg = AugmentConfig(**{**OFF.__dict__, "rotation": 30.0})
    gen = torch.Generator().manual_seed(0)
    out = augment(images, 65, cfg, gen=gen)[0, 0]
    assert out[32, 32] > 0.5  # the centre stays on the line
    assert out[32, 2] < out[32, 32]  # the far end of the line has moved away
