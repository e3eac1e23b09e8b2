"""Any timm model as a token encoder: ``timm:<model_name>``.

The model is built with ``pretrained=False`` (nothing is downloaded); pass ``checkpoint_path`` to
start from local weights. Its ``forward_features`` output is read as tokens: ViT-like models give
``[B, N, C]`` directly, CNN feature maps ``[B, C, H, W]`` (or NHWC) are flattened row-major.
"""

from __future__ import annotations

import torch
from torch import nn

from ocrkit.models.weights import load_state_dict


class TimmBackbone(nn.Module):
    """Wraps ``timm.create_model(model_name, ...)`` to return tokens ``[B, N, C]``."""

    def __init__(
        self,
        model_name: str,
        img_size: tuple[int, int] = (32, 128),
        checkpoint_path: str | None = None,
        trust_pickle: bool = False,
        **kwargs,
    ) -> None:
        super().__init__()
        import timm

        self.model_name = model_name
        self.img_size = (int(img_size[0]), int(img_size[1]))
        if not timm.is_model(model_name):
            raise KeyError(f"timm has no model {model_name!r} (see timm.list_models())")
        try:
            self.model = timm.create_model(
                model_name, pretrained=False, num_classes=0, img_size=self.img_size, **kwargs
            )
        except TypeError:  # CNNs and others that take no img_size
            self.model = timm.create_model(model_name, pretrained=False, num_classes=0, **kwargs)
        if checkpoint_path:
            state = load_state_dict(checkpoint_path, trust_pickle=trust_pickle)
            self.model.load_state_dict(state, strict=False)
        self.has_cls = getattr(self.model, "num_prefix_tokens", 0) > 0
        self.patch_size = None
        self._layout, self.num_features = self._probe()

    def _probe(self) -> tuple[str, int]:
        """Run one blank image through the model to learn its output layout and width."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model.forward_features(torch.zeros(1, 3, *self.img_size))
        except Exception as exc:
            raise ValueError(
                f"timm model {self.model_name!r} does not fit {self.img_size[0]}x"
                f"{self.img_size[1]} word images ({type(exc).__name__}: {exc}); pass img_size "
                "or model kwargs that fit, or choose another model"
            ) from exc
        finally:
            self.model.train(was_training)
        if not isinstance(out, torch.Tensor) or out.ndim not in (3, 4):
            raise ValueError(
                f"timm model {self.model_name!r}: forward_features gave "
                f"{getattr(out, 'shape', type(out))}, expected [B, N, C] or a [B, C, H, W] map"
            )
        width = int(getattr(self.model, "num_features", 0) or out.shape[-1])
        if out.ndim == 3:
            return "nlc", int(out.shape[-1])
        if out.shape[1] == width:
            return "nchw", width
        return "nhwc", int(out.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, N, C]``."""
        out = self.model.forward_features(x)
        if self._layout == "nchw":
            return out.flatten(2).transpose(1, 2)
        if self._layout == "nhwc":
            return out.flatten(1, 2)
        return out

    forward_features = forward
