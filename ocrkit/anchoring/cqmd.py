"""CQMD: the causal query-driven mask decoder of Q-Mask (Xu et al., arXiv 2604.00161, Sec. 3).

From the VLM's last-layer hidden states the head takes the visual-token states ``H_img`` and the
query-token states ``H_q`` (the user's question, never the answer)::

    Attn = softmax((H_img W_q)(H_q W_k)^T / sqrt(d)) (H_q W_v)      # image tokens attend to the query
    S    = ReLU(Attn W1 + b1) W2 + b2                                # per visual token features
    S    -> each image's 2D token grid (image_grid_thw / spatial merge size)
    mask logits = Upsampler(S)                                       # transposed convolutions

The head reads the hidden states only at visual and query positions, so the mask has no path to
answer tokens (dS/dH_a = 0 by construction; with the VLM's causal attention the visual and query
states themselves never see the answer either). Mask loss: Dice + binary cross-entropy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Named head sizes. ``None`` in a size means "the VLM hidden size d".
# * ``paper`` (default; Sec. 3 Eq. 5 and Sec. 5.1): S in R^{n x d} (``channels = d``), W_q/W_k/W_v
#   d x d, an MLP d -> 15.625 d -> d (32,000 at d = 2048), and two upsampling stages halving the
#   width (d -> d/2 -> d/4 -> 1 logit). At d = 2048 (Qwen2.5-VL-3B) this is 154,211,841 parameters,
#   +0.29% of the paper's 153.76M; the paper gives only the total, so the MLP width is ocrkit's
#   choice made to land on it (most parameters at token resolution, where they cost least).
# * ``small``: ocrkit's earlier default (~17.5M at d = 2048): a 256-channel S, MLP width d.
HEAD_SIZES: dict[str, dict] = {
    "paper": {"channels": None, "mlp_ratio": 15.625, "upsample_stages": 2, "min_channels": 32},
    "small": {"channels": 256, "mlp_ratio": 1.0, "upsample_stages": 2, "min_channels": 32},
}
PAPER_PARAMS = 153.76e6  # Sec. 5.1


@dataclass
class CQMDConfig:
    """Sizes of the head: a named ``size`` (``paper``, default, or ``small``, see
    :data:`HEAD_SIZES`) whose values fill every field left as None.

    ``attn_dim`` defaults to the VLM hidden size ``d``; ``mlp_dim`` to ``mlp_ratio * d``;
    ``channels`` (the width of S) to ``d`` in the paper size. ``upsample_stages`` transposed
    convolutions (kernel 2, stride 2) give mask logits at ``2**stages`` cells per merged visual
    token side (a Qwen2.5-VL token covers 28 px, so 2 stages give one logit per 7 px). The paper
    gives no sizes for these layers.
    """

    hidden_size: int = 0  # the VLM's text hidden size (filled in by QMask)
    size: str = "paper"
    attn_dim: int | None = None
    mlp_dim: int | None = None
    mlp_ratio: float | None = None
    channels: int | None = None  # width of S (None: d in the paper size)
    upsample_stages: int | None = None
    min_channels: int | None = None

    def __post_init__(self) -> None:
        if self.size not in HEAD_SIZES:
            raise ValueError(f"CQMD head size {self.size!r}: use one of {', '.join(HEAD_SIZES)}")
        for key, value in HEAD_SIZES[self.size].items():
            if getattr(self, key) is None:
                setattr(self, key, value)

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(attn_dim, mlp_dim, channels)`` for this hidden size."""
        d = self.attn_dim or self.hidden_size
        m = self.mlp_dim or max(1, int(round(float(self.mlp_ratio or 1.0) * self.hidden_size)))
        return d, m, int(self.channels or self.hidden_size)

    def to_dict(self) -> dict:
        return asdict(self)


def count_parameters(config: CQMDConfig) -> int:
    """The head's parameter count from its sizes (no tensors built)."""
    h = config.hidden_size
    d, m, c = config.dims
    total = 3 * h * d + (d * m + m) + (m * c + c)
    width = c
    for _ in range(int(config.upsample_stages or 0)):
        out = max(int(config.min_channels or 1), width // 2)
        total += width * out * 4 + out + 2 * out  # ConvTranspose2d k2 + LayerNorm2d
        width = out
    return total + width + 1


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW map (per pixel: padding never leaks in)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _upsampler(channels: int, stages: int, min_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = channels
    for _ in range(stages):
        out = max(min_channels, width // 2)
        layers += [nn.ConvTranspose2d(width, out, 2, stride=2), LayerNorm2d(out), nn.GELU()]
        width = out
    layers.append(nn.Conv2d(width, 1, 1))
    return nn.Sequential(*layers)


def gather_positions(hidden: Tensor, where: Tensor) -> tuple[Tensor, Tensor]:
    """``hidden[b, where[b]]`` left-aligned and padded: ``[B, N_max, D]`` and its validity mask."""
    counts = where.sum(1)
    n_max = int(counts.max()) if counts.numel() else 0
    order = torch.sort((~where).to(torch.int8), dim=1, stable=True).indices[:, :n_max]
    picked = hidden.gather(1, order.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    valid = torch.arange(n_max, device=hidden.device)[None] < counts[:, None]
    return picked, valid


class CQMDHead(nn.Module):
    """Query-conditioned mask logits for every image of a batch (see the module docstring)."""

    def __init__(self, config: CQMDConfig) -> None:
        super().__init__()
        if config.hidden_size <= 0:
            raise ValueError("CQMDConfig.hidden_size must be the VLM hidden size (> 0)")
        self.config = config
        d, m, channels = config.dims
        self.scale = 1.0 / math.sqrt(d)
        self.w_q = nn.Linear(config.hidden_size, d, bias=False)
        self.w_k = nn.Linear(config.hidden_size, d, bias=False)
        self.w_v = nn.Linear(config.hidden_size, d, bias=False)
        self.fc1 = nn.Linear(d, m)  # W1, b1
        self.fc2 = nn.Linear(m, channels)  # W2, b2
        self.upsample = _upsampler(channels, int(config.upsample_stages), int(config.min_channels))
        # Unit-variance attention logits at init for unit-RMS hidden states (the VLM's final
        # norm): with PyTorch's default (1/3 of that variance) the attention starts almost
        # uniform, every visual token gets the same value vector and the mask starts flat.
        for proj in (self.w_q, self.w_k):
            nn.init.normal_(proj.weight, std=config.hidden_size**-0.5)

    @property
    def factor(self) -> int:
        """Mask cells per merged visual token side."""
        return 2 ** int(self.config.upsample_stages)

    def token_features(self, hidden: Tensor, image_mask: Tensor, query_mask: Tensor) -> Tensor:
        """S for every visual token of the batch, ``[num_visual_tokens, channels]`` in order."""
        if bool((query_mask.sum(1) == 0).any()):
            raise ValueError("every sample needs at least one query token for the mask head")
        h_img, img_valid = gather_positions(hidden, image_mask)
        h_q, q_valid = gather_positions(hidden, query_mask)
        q = self.w_q(h_img)
        k = self.w_k(h_q)
        v = self.w_v(h_q)
        scores = torch.einsum("bnd,bqd->bnq", q, k) * self.scale
        scores = scores.masked_fill(~q_valid[:, None, :], torch.finfo(scores.dtype).min)
        attn = torch.einsum("bnq,bqd->bnd", scores.softmax(-1), v)
        s = self.fc2(F.relu(self.fc1(attn)))
        return s[img_valid]

    def forward(
        self,
        hidden: Tensor,
        image_mask: Tensor,
        query_mask: Tensor,
        image_grid_thw: Tensor,
        merge_size: int,
    ) -> list[Tensor]:
        """Mask logits ``[h * f, w * f]`` per image (batch order), ``h, w`` = merged grid."""
        tokens = self.token_features(hidden, image_mask, query_mask)
        grids = [(int(t), int(h) // merge_size, int(w) // merge_size) for t, h, w in image_grid_thw]
        sizes = [t * h * w for t, h, w in grids]
        if sum(sizes) != tokens.shape[0]:
            raise ValueError(
                f"{tokens.shape[0]} visual tokens in the sequence but image_grid_thw describes "
                f"{sum(sizes)}; the image placeholders and the images do not match"
            )
        maps = []
        for chunk, (t, h, w) in zip(tokens.split(sizes), grids):
            maps.append(chunk.view(t, h, w, -1).mean(0).permute(2, 0, 1))  # frames averaged
        h_max = max(m.shape[1] for m in maps)
        w_max = max(m.shape[2] for m in maps)
        batch = hidden.new_zeros(len(maps), maps[0].shape[0], h_max, w_max)
        for i, m in enumerate(maps):
            batch[i, :, : m.shape[1], : m.shape[2]] = m
        # Kernel-2 stride-2 transposed convolutions and per-pixel norms: padding never mixes in.
        logits = self.upsample(batch)[:, 0]
        f = self.factor
        return [logits[i, : m.shape[1] * f, : m.shape[2] * f] for i, m in enumerate(maps)]


# --- the mask loss ---------------------------------------------------------------------------


def resize_target(target: Tensor, size: Sequence[int]) -> Tensor:
    """A ground-truth mask (``uint8`` 0-255 or float in [0, 1], ``[H, W]``) as a float map in
    [0, 1] area-resized to the logits' ``size``."""
    value = target.float() / 255.0 if target.dtype == torch.uint8 else target.float()
    if tuple(value.shape[-2:]) == tuple(size):
        return value
    return F.interpolate(value[None, None], size=tuple(size), mode="area")[0, 0]


def dice_loss(logits: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """``1 - (2 sum(p g) + s) / (sum(p) + sum(g) + s)`` with ``p = sigmoid(logits)``."""
    p = logits.sigmoid().flatten()
    g = target.flatten()
    return 1.0 - (2.0 * (p * g).sum() + smooth) / (p.sum() + g.sum() + smooth)


def dice_score(logits: Tensor, target: Tensor) -> Tensor:
    """Soft Dice ``2 sum(p g) / (sum(p) + sum(g))`` (a metric, no gradient; 1 when both are empty).

    Soft, because an area-resized glyph mask covers most cells only partly: thresholding the
    target would empty it and reward an empty prediction.
    """
    p = logits.detach().float().sigmoid().flatten()
    g = target.detach().float().flatten()
    denom = p.sum() + g.sum()
    return torch.where(
        denom > 0, 2.0 * (p * g).sum() / denom.clamp_min(1e-9), torch.ones_like(denom)
    )


def mask_loss(logits: Sequence[Tensor], targets: Sequence[Tensor | None]) -> dict[str, Tensor]:
    """L_mask = Dice + BCE, averaged over the images that have a ground-truth mask.

    Returns ``loss_mask`` (0 with no masked image, still attached to the graph), ``dice``
    (mean soft Dice, a metric) and ``masked_images`` (the count).
    """
    losses, scores = [], []
    for lg, tg in zip(logits, targets):
        if tg is None:
            continue
        tg = resize_target(tg.to(lg.device), lg.shape[-2:])
        bce = F.binary_cross_entropy_with_logits(lg.float(), tg)
        losses.append(dice_loss(lg.float(), tg) + bce)
        scores.append(dice_score(lg, tg))
    if not losses:
        zero = sum(lg.sum() for lg in logits) * 0.0 if logits else torch.zeros(())
        return {"loss_mask": zero, "dice": zero.detach(), "masked_images": torch.zeros(())}
    return {
        "loss_mask": torch.stack(losses).mean(),
        "dice": torch.stack(scores).mean(),
        "masked_images": torch.tensor(float(len(losses))),
    }
