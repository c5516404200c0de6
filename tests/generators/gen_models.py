"""Generators a project could write, for the tests: a plain function, a constant model, a StyleGAN-range one."""

import torch


def flat(z):
    """Every latent → the same grey uint8 image (N×H×W×C: dsim transposes it)."""
    return torch.full((z.shape[0], 16, 16, 3), 128, dtype=torch.uint8)


class Signed(torch.nn.Module):
    """Images in [-1, 1] with one channel (StyleGAN's range, a grayscale model)."""

    def __init__(self, z_dim: int = 8, size: int = 16):
        super().__init__()
        self.z_dim = z_dim
        self.linear = torch.nn.Linear(z_dim, size * size)
        self.size = size

    def forward(self, z):
        return torch.tanh(self.linear(z)).reshape(-1, 1, self.size, self.size) * 1.2  # a little beyond [-1, 1]
