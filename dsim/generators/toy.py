"""The toy generator: a small seeded convolutional generator shipped with dsim (``generator=toy``).

It has StyleGAN's shape without its training: a mapping network (z → w, an MLP after pixel norm) and a
synthesis network (a learned 4×4 constant, upsampled through 3×3 convolutions whose channels w modulates,
then a sigmoid), so z- and w-space PPL, sampling and every metric on its images can be tested offline.
Its weights are drawn from ``init_seed`` (nothing is trained): the images are smooth coloured textures
that change smoothly with the latent, not photographs.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _normal_(tensor: torch.Tensor, generator: torch.Generator, gain: float = 1.0) -> None:
    fan_in = tensor[0].numel()
    with torch.no_grad():
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * (gain / math.sqrt(fan_in)))


class ToyGenerator(nn.Module):
    """z (N×z_dim, standard normal) → images (N×3×resolution×resolution, floats in [0, 1]).

    >>> g = ToyGenerator(z_dim=8, w_dim=8, resolution=16)
    >>> g(torch.randn(2, 8)).shape
    torch.Size([2, 3, 16, 16])
    """

    #: bump when the architecture or initialisation changes (part of the generator identity)
    version = 1

    def __init__(
        self,
        z_dim: int = 64,
        w_dim: int = 64,
        resolution: int = 64,
        channels: int = 32,
        mapping_layers: int = 4,
        init_seed: int = 0,
    ):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"ToyGenerator: resolution must be a power of two >= 8, got {resolution}")
        self.z_dim, self.w_dim, self.resolution = int(z_dim), int(w_dim), int(resolution)
        layers: list[nn.Module] = []
        for i in range(mapping_layers):
            layers += [nn.Linear(z_dim if i == 0 else w_dim, w_dim), nn.LeakyReLU(0.2)]
        self.mapping_net = nn.Sequential(*layers)
        self.const = nn.Parameter(torch.zeros(channels, 4, 4))
        blocks = int(math.log2(resolution)) - 2
        self.convs = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in range(blocks + 1))
        self.styles = nn.ModuleList(nn.Linear(w_dim, channels) for _ in range(blocks + 1))
        self.to_rgb = nn.Conv2d(channels, 3, 1)
        self._initialise(init_seed)
        self.eval()

    def _initialise(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(int(seed))
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                _normal_(module.weight, generator, gain=math.sqrt(2.0))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        _normal_(self.const, generator, gain=4.0)
        _normal_(self.to_rgb.weight, generator, gain=2.0)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z → w (N×w_dim): pixel norm, then the MLP."""
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        return self.mapping_net(z)

    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        """w → images in [0, 1]."""
        x = self.const.unsqueeze(0).expand(w.shape[0], -1, -1, -1)
        for i, (conv, style) in enumerate(zip(self.convs, self.styles)):
            if i:
                x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = conv(x * (1 + style(w))[:, :, None, None])
            x = nn.functional.leaky_relu(x, 0.2)
            x = x * torch.rsqrt(x.square().mean(dim=(1, 2, 3), keepdim=True) + 1e-8)  # keeps contrast per image
        return torch.sigmoid(self.to_rgb(x))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.mapping(z))
