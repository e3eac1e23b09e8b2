"""The unified anchoring instance, its JSONL form, and the training dataset.

One :class:`AnchorInstance` is one (image, question, answer) with optional mask targets::

    {"id", "image", "width", "height", "task": "r2t" | "t2r" | "vqa" | "read",
     "question", "answer", "transcript", "box",
     "regions": [{"text", "shape"}],   # mask targets, rendered de-stylized (masks.py)
     "mask": "masks/x.png" | null,      # or a ready mask image instead of regions
     "prior": [{"text", "box"}],        # OCR-prior candidates for SPI (spi.py)
     "source"}

``image``/``mask`` paths are relative to the JSONL file (absolute paths stay as they are). An
instance without regions and mask trains the answer only (L_NTP); see ``model.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ocrkit.anchoring.coords import native_answer, native_question, to_model_box
from ocrkit.anchoring.masks import FontLike, render_mask
from ocrkit.anchoring.spi import PriorItem, SPIConfig, format_prior, inject_prior
from ocrkit.utils.io import atomic_write_text

log = logging.getLogger(__name__)
TASKS = ("r2t", "t2r", "vqa", "read")


@dataclass
class AnchorInstance:
    """One training or evaluation sample (see the module docstring for the fields)."""

    image: str
    question: str
    answer: str
    task: str = "vqa"
    width: int = 0
    height: int = 0
    transcript: str | None = None
    box: list[float] | None = None
    regions: list[dict[str, Any]] = field(default_factory=list)
    mask: str | None = None
    prior: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    id: str = ""

    @property
    def has_mask(self) -> bool:
        return bool(self.regions) or self.mask is not None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any], root: Path | None = None) -> AnchorInstance:
        known = cls.__dataclass_fields__
        unknown = set(record) - set(known)
        if unknown:
            raise ValueError(f"unknown anchoring instance fields {sorted(unknown)}")
        for key in ("image", "question", "answer"):
            if key not in record:
                raise ValueError(f"an anchoring instance needs {key!r}")
        inst = cls(**record)
        if inst.task not in TASKS:
            raise ValueError(f"task {inst.task!r}: use one of {TASKS}")
        if root is not None:
            inst.image = _resolve(inst.image, root)
            inst.mask = _resolve(inst.mask, root) if inst.mask else None
        return inst


def _resolve(path: str, root: Path) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (root / p))


def write_instances(path: str | Path, instances: Iterable[AnchorInstance]) -> int:
    """Write instances as JSONL atomically (image paths relative to the file when inside it)."""
    path = Path(path)
    root = path.parent.resolve()
    lines = []
    for inst in instances:
        rec = inst.to_record()
        for key in ("image", "mask"):
            if rec[key]:
                p = Path(rec[key]).resolve()
                rec[key] = str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
        lines.append(json.dumps(rec, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def read_instances(path: str | Path) -> list[AnchorInstance]:
    """Read an instances JSONL (paths resolved against its folder); errors name the line."""
    path = Path(path)
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(AnchorInstance.from_record(json.loads(line), path.parent))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: {exc}") from None
    return out


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB ``uint8`` (:func:`ocrkit.data.image_io.read_image`: EXIF
    orientation applied, as in every ocrkit reader)."""
    from ocrkit.data.image_io import read_image

    return read_image(path)


def instance_mask(
    inst: AnchorInstance, width: int, height: int, font: FontLike = None
) -> np.ndarray | None:
    """The ground-truth mask (``uint8 [H, W]``) of ``inst``, or None when it has none."""
    if inst.mask:
        import cv2

        from ocrkit.data.image_io import CorruptImageError, read_gray

        try:
            mask = read_gray(inst.mask)
        except (OSError, CorruptImageError):
            raise FileNotFoundError(f"cannot read mask {inst.mask}") from None
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA)
        return mask
    if inst.regions:
        return render_mask([(r["text"], r["shape"]) for r in inst.regions], width, height, font)
    return None


def build_prompt(question: str, prior: Sequence[PriorItem] = ()) -> str:
    """The user text: the OCR prior block (if any) then the question."""
    return format_prior(prior) + question


class AnchorDataset(Dataset):
    """Instances -> ``{"id", "images", "prompt", "question", "answer", "masks", ...}`` samples.

    With ``spi`` set, each sample's prompt gets an OCR prior drawn by Stochastic Prior Injection
    from the global NumPy RNG (seeded per sample by the trainer, so runs are reproducible).
    Unreadable images give None (counted by the collate function), never an exception.
    With ``coords`` (a TABench adapter, ``QMask.box_adapter()``) every box in the question, the
    T2R answer and the prior is written in the model family's convention; None keeps absolute
    pixels of the original image.
    """

    def __init__(
        self,
        instances: Sequence[AnchorInstance],
        spi: SPIConfig | None = None,
        font: FontLike = None,
        with_masks: bool = True,
        coords: Any = None,
    ) -> None:
        self.instances = list(instances)
        self.spi, self.font, self.with_masks = spi, font, with_masks
        self.coords = coords
        self._warned = False

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        inst = self.instances[index]
        try:
            image = load_rgb(inst.image)
        except (OSError, ValueError) as exc:
            if not self._warned:
                log.warning(
                    "skipping unreadable image %s (%s); further ones are counted", inst.image, exc
                )
                self._warned = True
            return None
        h, w = image.shape[:2]
        prior: list[PriorItem] = []
        info: dict[str, Any] = {"gamma": 0.0}
        if self.spi is not None and self.spi.enabled and inst.prior:
            rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
            items = [
                PriorItem(p["text"], list(p["box"]), bool(p.get("target"))) for p in inst.prior
            ]
            prior, info = inject_prior(items, rng, self.spi)
        mask = instance_mask(inst, w, h, self.font) if self.with_masks else None
        question, answer = inst.question, inst.answer
        if self.coords is not None:
            question = native_question(question, inst.task, inst.box, self.coords, w, h)
            answer = native_answer(answer, inst.task, self.coords, w, h)
            prior = [
                PriorItem(p.text, to_model_box(self.coords, p.box, w, h), p.target) for p in prior
            ]
        return {
            "id": inst.id,
            "images": [image],
            "prompt": build_prompt(question, prior),
            "question": question,
            "answer": answer,
            "masks": [mask],
            "task": inst.task,
            "gamma": info["gamma"],
        }
