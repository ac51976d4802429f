"""AnimeGANv2's generator, in the layout of the published PyTorch port (bryandlee/animegan2-pytorch).

The user brings the weights (``face_paint_512_v2.pt``, ``face_paint_512_v1.pt``, ``paprika.pt``,
``celeba_distill.pt``): plain ``state_dict`` files whose tensor names are fixed by that port's
module tree. This module rebuilds the same tree (module names and order are the contract, so they
are kept exactly: ``block_a`` .. ``block_e``, ``out_layer``; a conv-norm-activation unit is a
Sequential of padding, conv, GroupNorm(1 group), LeakyReLU(0.2); an inverted residual block keeps its
units in ``layers``) and loads those files strictly.

The network: two stride-2 stages down, four inverted residual blocks at quarter resolution,
bilinear upsampling back to the half and then the full input size (so any input size works), and a
1x1 convolution with tanh to RGB in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avatars.studio import StudioError

Padding = int | tuple[int, int, int, int]


def conv_unit(cin: int, cout: int, kernel: int = 3, stride: int = 1, pad: Padding = 1, groups: int = 1,
              bias: bool = False) -> nn.Sequential:
    """Reflection pad, conv, layer-style GroupNorm, LeakyReLU: state_dict keys ``1.weight``, ``2.weight/bias``."""
    return nn.Sequential(nn.ReflectionPad2d(pad),
                         nn.Conv2d(cin, cout, kernel, stride=stride, padding=0, groups=groups, bias=bias),
                         nn.GroupNorm(1, cout, affine=True),
                         nn.LeakyReLU(0.2, inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2-style block: 1x1 expand, 3x3 depthwise, 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, expansion: float = 2.0) -> None:
        super().__init__()
        mid = int(round(cin * expansion))
        units: list[nn.Module] = [] if expansion == 1 else [conv_unit(cin, mid, kernel=1, pad=0)]
        units += [conv_unit(mid, mid, groups=mid, bias=True),
                  nn.Conv2d(mid, cout, 1, padding=0, bias=False),
                  nn.GroupNorm(1, cout, affine=True)]
        self.layers = nn.Sequential(*units)
        self.residual = cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return x + y if self.residual else y


class AnimeGANv2Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        down = (0, 1, 0, 1)  # pad right and bottom only before a stride-2 conv
        self.block_a = nn.Sequential(conv_unit(3, 32, kernel=7, pad=3), conv_unit(32, 64, stride=2, pad=down),
                                     conv_unit(64, 64))
        self.block_b = nn.Sequential(conv_unit(64, 128, stride=2, pad=down), conv_unit(128, 128))
        self.block_c = nn.Sequential(conv_unit(128, 128), InvertedResidual(128, 256), InvertedResidual(256, 256),
                                     InvertedResidual(256, 256), InvertedResidual(256, 256), conv_unit(256, 128))
        self.block_d = nn.Sequential(conv_unit(128, 128), conv_unit(128, 128))
        self.block_e = nn.Sequential(conv_unit(128, 64), conv_unit(64, 64), conv_unit(64, 32, kernel=7, pad=3))
        self.out_layer = nn.Sequential(nn.Conv2d(32, 3, 1, bias=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [-1, 1], N x 3 x H x W, to the same size in [-1, 1]."""
        half = self.block_a(x)
        y = self.block_c(self.block_b(half))
        y = F.interpolate(y, half.shape[-2:], mode="bilinear", align_corners=True)
        y = self.block_d(y)
        y = F.interpolate(y, x.shape[-2:], mode="bilinear", align_corners=True)
        return self.out_layer(self.block_e(y))


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise StudioError(f"AnimeGANv2 weights not found at {path}: put face_paint_512_v2.pt (from the "
                          "bryandlee/animegan2-pytorch release) there, or pass --weights PATH")
    try:
        state: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load fails in many ways (pickle, zip, memo KeyError): all mean "not weights"
        raise StudioError(f"{path} is not a PyTorch weights file this can read ({type(e).__name__}): use a .pt "
                          "state_dict from bryandlee/animegan2-pytorch such as face_paint_512_v2.pt") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise StudioError(f"{path} does not hold a state_dict of tensors: use a .pt from bryandlee/animegan2-pytorch")
    return {str(k): v for k, v in state.items()}


def layout_problems(model: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """Empty when ``state`` fits ``model`` exactly; else a short account of missing, extra and misshapen tensors."""
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    shape = [k for k in want if k in state and tuple(state[k].shape) != tuple(want[k].shape)]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("of the wrong shape", shape)):
        if keys:
            parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
    return "; ".join(parts)


def load_generator(path: str | Path, device: str = "cpu") -> AnimeGANv2Generator:
    """The generator with the user's weights, in eval mode on ``device`` (float16 on CUDA)."""
    state = _read_state_dict(Path(path))
    model = AnimeGANv2Generator()
    problems = layout_problems(model, state)
    if problems:
        raise StudioError(f"{path} is not an AnimeGANv2 generator in the bryandlee/animegan2-pytorch layout "
                          f"({len(model.state_dict())} tensors expected: {problems}): use face_paint_512_v2.pt, "
                          "face_paint_512_v1.pt, paprika.pt or celeba_distill.pt from that project")
    model.load_state_dict(state, strict=True)
    model.eval().to(device)
    if device.startswith("cuda"):
        model.half()
    return model
