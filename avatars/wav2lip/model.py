"""The Wav2Lip generator (Prajwal et al., 2020): 96x96 faces, 80x16 mel windows.

Layer for layer the published architecture, so the official ``wav2lip.pth`` / ``wav2lip_gan.pth``
state dicts load into it unchanged (their keys: face_encoder_blocks.*, audio_encoder.*,
face_decoder_blocks.*, output_block.*, each conv as conv_block.0 (Conv2d) + conv_block.1 (BatchNorm)).
``encode_face`` / ``decode`` split the forward pass so a static face's encoder output can be reused.
"""

from __future__ import annotations

import torch
from torch import nn


class Conv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int | tuple[int, int], padding: int,
                 residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class Conv2dTranspose(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int, output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(c: int) -> Conv2d:
    return Conv2d(c, c, 3, 1, 1, residual=True)


class Wav2Lip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(6, 16, 7, 1, 3)),
            nn.Sequential(Conv2d(16, 32, 3, 2, 1), _res(32), _res(32)),
            nn.Sequential(Conv2d(32, 64, 3, 2, 1), _res(64), _res(64), _res(64)),
            nn.Sequential(Conv2d(64, 128, 3, 2, 1), _res(128), _res(128)),
            nn.Sequential(Conv2d(128, 256, 3, 2, 1), _res(256), _res(256)),
            nn.Sequential(Conv2d(256, 512, 3, 2, 1), _res(512)),
            nn.Sequential(Conv2d(512, 512, 3, 1, 0), Conv2d(512, 512, 1, 1, 0)),
        ])
        self.audio_encoder = nn.Sequential(
            Conv2d(1, 32, 3, 1, 1), _res(32), _res(32),
            Conv2d(32, 64, 3, (3, 1), 1), _res(64), _res(64),
            Conv2d(64, 128, 3, 3, 1), _res(128), _res(128),
            Conv2d(128, 256, 3, (3, 2), 1), _res(256),
            Conv2d(256, 512, 3, 1, 0), Conv2d(512, 512, 1, 1, 0),
        )
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(512, 512, 1, 1, 0)),
            nn.Sequential(Conv2dTranspose(1024, 512, 3, 1, 0), _res(512)),
            nn.Sequential(Conv2dTranspose(1024, 512, 3, 2, 1, output_padding=1), _res(512), _res(512)),
            nn.Sequential(Conv2dTranspose(768, 384, 3, 2, 1, output_padding=1), _res(384), _res(384)),
            nn.Sequential(Conv2dTranspose(512, 256, 3, 2, 1, output_padding=1), _res(256), _res(256)),
            nn.Sequential(Conv2dTranspose(320, 128, 3, 2, 1, output_padding=1), _res(128), _res(128)),
            nn.Sequential(Conv2dTranspose(160, 64, 3, 2, 1, output_padding=1), _res(64), _res(64)),
        ])
        self.output_block = nn.Sequential(Conv2d(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def encode_face(self, faces: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = faces
        for block in self.face_encoder_blocks:
            x = block(x)
            feats.append(x)
        return feats

    def decode(self, audio: torch.Tensor, feats: list[torch.Tensor], broadcast: bool = False) -> torch.Tensor:
        """``broadcast``: ``feats`` come from one face and are shared by every audio window."""
        x = self.audio_encoder(audio)
        for block, skip in zip(self.face_decoder_blocks, reversed(feats), strict=True):
            x = block(x)
            if broadcast:
                skip = skip.expand(x.shape[0], *skip.shape[1:])
            x = torch.cat((x, skip), dim=1)
        return self.output_block(x)

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        """audio (B, 1, 80, 16), faces (B, 6, 96, 96) in [0, 1] -> (B, 3, 96, 96) in [0, 1]."""
        return self.decode(audio_sequences, self.encode_face(face_sequences))


def calibrate_random(model: Wav2Lip, audio: torch.Tensor, faces: torch.Tensor, out_std: float = 1.5,
                     batch: int = 32, seed: int = 1) -> Wav2Lip:
    """Give a randomly initialised generator the activation statistics a trained one has, for tests and
    benchmarks that compare precisions. Untouched, random weights give a flat grey face on which any
    precision looks perfect (> 50 dB). Here BatchNorm statistics are measured on a varied batch made
    from ``audio`` and ``faces`` (brightness, noise and shifts, so no channel is constant and then
    divided by a near-zero variance), and the output layer is scaled so the sigmoid spans most of
    [0, 1]. The weights stay random: this exercises numerical error through every layer at
    realistic ranges; it cannot show what a trained network's output looks like."""
    g = torch.Generator().manual_seed(seed)
    pick_a = torch.randint(0, len(audio), (batch,), generator=g)
    pick_f = torch.randint(0, len(faces), (batch,), generator=g)
    var_audio = audio[pick_a] + 0.3 * torch.randn((batch, *audio.shape[1:]), generator=g)
    var_faces = faces[pick_f] * (0.6 + 0.8 * torch.rand(batch, 1, 1, 1, generator=g))
    var_faces = var_faces + 0.05 * torch.randn(var_faces.shape, generator=g)
    shifts = torch.randint(-8, 9, (batch, 2), generator=g).tolist()
    var_faces = torch.stack([torch.roll(f, (dy, dx), dims=(1, 2)) for f, (dy, dx) in zip(var_faces, shifts, strict=True)]).clamp(0, 1)
    var_faces[:, :3, faces.shape[2] // 2:] = 0.0
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration batch
    model.train()
    with torch.no_grad():
        model(var_audio, var_faces)
        model.eval()
        captured: list[torch.Tensor] = []
        last: nn.Conv2d = model.output_block[1]  # type: ignore[assignment]
        handle = last.register_forward_hook(lambda _m, _i, out: captured.append(out))
        model(audio, faces)
        handle.remove()
        pre = captured[0]
        scale = out_std / float(pre.std())
        last.weight.mul_(scale)
        bias: torch.Tensor = last.bias  # type: ignore[assignment]
        bias.mul_(scale).sub_(pre.mean(dim=(0, 2, 3)) * scale)
    return model
