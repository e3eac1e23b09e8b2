"""Word crops from FUNSD forms (the original layout: ``annotations/*.json`` + ``images/*.png``).

Each annotation file is ``{"form": [{"words": [{"box": [x1, y1, x2, y2], "text": ...}, ...],
...}, ...]}`` for the image of the same stem. Every non-empty word becomes a sample, cut as an
axis-aligned box (scanned forms are upright); words with empty text are counted in
``num_ignored``, never samples. Keys are ``images/<stem>.png#<word index in the file>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.data.scene import SceneCropDataset


class FunsdWordDataset(SceneCropDataset):
    """The words of a FUNSD split folder as STR samples (scene decoding and caching as
    :class:`~ocrkit.data.scene.SceneCropDataset`)."""

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        path = Path(path)
        if not (path / "annotations").is_dir():
            raise FileNotFoundError(f"{path} is not a FUNSD folder (no annotations/ folder)")
        kwargs.setdefault("name", path.name)
        super().__init__(path / "annotations", root=path, **kwargs)

    def _parse(self, annotations: Path) -> None:
        for file in sorted(annotations.glob("*.json")):
            try:
                form = json.loads(file.read_text(encoding="utf-8"))["form"]
                words = [w for entry in form for w in entry.get("words", [])]
                scene = len(self.images)
                self.images.append(f"images/{file.stem}.png")
                for k, word in enumerate(words):
                    text = str(word.get("text") or "").strip()
                    if not text:
                        self.num_ignored += 1
                        continue
                    x1, y1, x2, y2 = (float(v) for v in word["box"])
                    points = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
                    self._add_instance(scene, k, points, text)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{file}: bad FUNSD annotation ({exc}); expected "
                    '{"form": [{"words": [{"box": [x1, y1, x2, y2], "text": ...}]}]}'
                ) from None
