"""Anchoring training instances from region annotations and from the synthetic renderer.

Region annotations are read with TABench's readers (ICDAR-style JSONL such as
``shared/data/ic15_train``, FUNSD folders, the generic region JSONL), so a region means the same
thing in training data and in the benchmark. From one annotated image come:

* ``r2t``: the S1 prompt ``What is the text at location [x1, y1, x2, y2]?`` -> the transcript;
  mask: the region's de-stylized text;
* ``t2r``: ``Where is "TEXT" located in the image?`` -> ``[{"bbox_2d": [...]}, ...]`` (absolute
  pixels, every instance with the same canonical string); mask: all those regions;
* ``read`` (VQA without mask): ``Read all the text in the image.`` -> the words in reading order
  (images with few words only);
* ``vqa`` (FUNSD): ``What is the value of the field "Q"?`` -> the linked answer entity; with its
  mask (VQA with masks) or without (``vqa_masks: false``).

Every instance lists OCR-prior candidates for SPI (``prior`` of a spec, Eq. 9 / S2.1): by default
(``paper``) scene images get ``V_raw``, the raw output of an OCR engine (RapidOCR, cached per
image, :mod:`ocrkit.anchoring.raw_ocr`), every raw item kept and those covering a queried region
marked as targets; document pages get none. ``gt`` lists the image's annotated regions instead
(ocrkit before the fidelity pass), ``ocr`` gives ``V_raw`` to documents too, ``none`` no prior.
The synthetic scenes (:mod:`ocrkit.anchoring.synth`) are read back through the same path.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrkit.anchoring.data import AnchorInstance
from ocrkit.anchoring.raw_ocr import prior_kind, prior_source
from ocrkit.anchoring.synth import render_scenes
from ocrkit.tabench.prompts import READ_PROMPT, r2t_prompt, t2r_answer, t2r_prompt, vqa_prompt
from ocrkit.utils import paths

log = logging.getLogger(__name__)

ANCHOR_TASKS = ("r2t", "t2r", "read", "vqa")
TASK_KEYS = ("name", "repeat", "holdout")  # spec keys read here or by the qmask task


def _bbox(shape: Sequence[Any]) -> list[int]:
    from ocrkit.tabench.geometry import bounding_box

    return [int(round(v)) for v in bounding_box(shape)]


def _clip(box: Sequence[float], width: int, height: int) -> list[int]:
    x1, y1, x2, y2 = box
    return [
        int(max(0, min(width, x1))),
        int(max(0, min(height, y1))),
        int(max(0, min(width, x2))),
        int(max(0, min(height, y2))),
    ]


def instances_from_image(
    img: Any,
    rng: np.random.Generator,
    tasks: Sequence[str] = ("r2t", "t2r"),
    per_image: int | None = 4,
    read_max_words: int = 12,
    raw: Sequence[Any] | None = None,
) -> list[AnchorInstance]:
    """R2T / T2R / read instances of one ``tabench.sources.AnnotatedImage``.

    ``raw``: the image's ``V_raw`` (``[(text, box), ...]``) as the prior candidates; None lists
    the annotated regions (the ``gt`` prior); ``[]`` gives no prior.
    """
    from ocrkit.data.image_io import image_size
    from ocrkit.tabench.normalize import canonicalize

    width, height = img.size or image_size(img.path)
    legible = [r for r in img.regions if not r.ignore and r.text.strip()]
    if not legible:
        return []
    prior = [{"text": r.text, "box": _clip(_bbox(r.shape), width, height)} for r in legible]
    base = {"image": str(img.path), "width": width, "height": height, "source": img.source}
    out: list[AnchorInstance] = []

    def with_targets(indices: Iterable[int]) -> list[dict[str, Any]]:
        chosen = set(indices)
        if raw is not None:
            from ocrkit.anchoring.raw_ocr import raw_prior

            return raw_prior(raw, [prior[i]["box"] for i in sorted(chosen)], width, height)
        return [{**p, "target": i in chosen} for i, p in enumerate(prior)]

    def pick(n: int) -> list[int]:
        k = n if per_image is None else min(per_image, n)
        return sorted(int(i) for i in rng.choice(n, size=k, replace=False))

    if "r2t" in tasks:
        for i in pick(len(legible)):
            r, box = legible[i], prior[i]["box"]
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            out.append(
                AnchorInstance(
                    **base,
                    task="r2t",
                    question=r2t_prompt(box),
                    answer=r.text,
                    transcript=r.text,
                    box=box,
                    regions=[{"text": r.text, "shape": r.shape}],
                    prior=with_targets([i]),
                )
            )
    if "t2r" in tasks:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(legible):
            key = canonicalize(r.text)
            if key:
                groups[key].append(i)
        keys = sorted(groups)
        for j in pick(len(keys)):
            members = groups[keys[j]]
            text = Counter(legible[i].text for i in members).most_common(1)[0][0]
            boxes = [prior[i]["box"] for i in members]
            out.append(
                AnchorInstance(
                    **base,
                    task="t2r",
                    question=t2r_prompt(text),
                    answer=t2r_answer(boxes),
                    transcript=text,
                    regions=[{"text": legible[i].text, "shape": legible[i].shape} for i in members],
                    prior=with_targets(members),
                )
            )
    if "read" in tasks and len(legible) <= read_max_words:
        order = sorted(range(len(legible)), key=lambda i: (prior[i]["box"][1], prior[i]["box"][0]))
        out.append(
            AnchorInstance(
                **base,
                task="read",
                question=READ_PROMPT,
                answer=" ".join(legible[i].text for i in order),
                prior=with_targets([]),
            )
        )
    return out


def funsd_vqa(
    root: str | Path, masks: bool = True, source: str = "funsd", priors: bool = True
) -> Iterator[AnchorInstance]:
    """Key-value questions of FUNSD forms: a linked question entity -> its answer entity
    (``priors=False``: no OCR prior, the paper's rule for document pages)."""
    from ocrkit.data.image_io import image_size

    root = Path(root)
    for ann in sorted((root / "annotations").glob("*.json")):
        from ocrkit.tabench.sources import funsd_image

        image = funsd_image(root, ann.stem).resolve()
        if not image.is_file():
            log.warning("%s: no image, skipped", ann)
            continue
        form = json.loads(ann.read_text(encoding="utf-8")).get("form", [])
        by_id = {e["id"]: e for e in form}
        width, height = image_size(image)
        words = [w for e in form for w in e.get("words", []) if str(w.get("text", "")).strip()]
        prior = [{"text": w["text"], "box": _clip(w["box"], width, height)} for w in words]
        for e in form:
            if e.get("label") != "question" or not e.get("text", "").strip():
                continue
            for a, b in e.get("linking", []):
                other = by_id.get(b if a == e["id"] else a)
                if other is None or other.get("label") != "answer" or not other["text"].strip():
                    continue
                regions = [
                    {"text": w["text"], "shape": w["box"]}
                    for w in other["words"]
                    if w["text"].strip()
                ]
                targets = {id(w) for w in other["words"]}
                yield AnchorInstance(
                    image=str(image),
                    width=width,
                    height=height,
                    task="vqa",
                    question=vqa_prompt(e["text"]),
                    answer=other["text"].strip(),
                    box=_clip(other["box"], width, height),
                    regions=regions if masks else [],
                    prior=[{**p, "target": id(w) in targets} for p, w in zip(prior, words)]
                    if priors
                    else [],
                    source=source,
                )


# --- recipe specs ----------------------------------------------------------------------------


def _excluded_images(benches: Sequence[str | Path]) -> set[str]:
    from ocrkit.tabench.schema import load_bench

    out: set[str] = set()
    for bench in benches:
        out |= {str(q.image_path.resolve()) for q in load_bench(bench)}
    return out


def _drop_bench_images(
    out: list[AnchorInstance], holdout: str | None, where: str
) -> list[AnchorInstance]:
    """Leave out instances on held-apart bench images (``tabench-local`` and ``holdout``), by
    path or file hash; loudly unless the spec names the split in ``holdout``."""
    from ocrkit.tabench.split import load_split

    splits = [load_split(s) for s in dict.fromkeys(["tabench-local", holdout]) if s]
    bad: dict[str, str] = {}
    for image in dict.fromkeys(inst.image for inst in out):
        why = next((m for m in (sp.match(image) for sp in splits) if m), None)
        if why:
            bad[image] = why
    if bad:
        first = next(iter(bad))
        msg = (
            f"data spec {where}: {len(bad)} image(s) are held apart for TABench and left out of "
            f"training (e.g. {first}: {bad[first]})"
        )
        if holdout:
            log.info(msg)
        else:
            log.warning("%s (a recipe says so with `holdout: tabench-local` in the spec)", msg)
    return [inst for inst in out if inst.image not in bad]


def build_instances(
    spec: Mapping[str, Any] | str,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    ocr_engine: Any = None,
) -> list[AnchorInstance]:
    """Instances of one data spec (see ``docs/qmask.md``)::

    {type: icdar | funsd | jsonl | synth | instances, path: ..., tasks: [r2t, t2r, ...],
     per_image: 4, vqa_masks: true, num_images: 1000, exclude: [bench.jsonl], limit: N,
     holdout: tabench-local, prior: paper | gt | ocr | none, ocr_cache: FILE}

    ``prior`` picks the OCR-prior candidates (module docstring); ``V_raw`` comes from
    ``ocr_engine`` (default RapidOCR; any ``image -> [(text, box)]`` callable), cached in
    ``ocr_cache`` (default ``<cache>/qmask-vraw/<engine>.jsonl``) by image hash.

    Images held apart for a bench (the committed ``tabench-local`` split, and ``holdout``) are
    never training images: they are left out, matched by path and by file hash, with a loud
    warning unless the spec names the split in ``holdout``.
    """
    from ocrkit.data.specs import parse_spec
    from ocrkit.tabench.sources import read_funsd, read_jsonl

    parsed = parse_spec(spec, default_type="instances", task_keys=TASK_KEYS)
    kind, spec, holdout = parsed.type, parsed.options, parsed.holdout
    tasks = tuple(spec.pop("tasks", ("r2t", "t2r")))
    bad = set(tasks) - set(ANCHOR_TASKS)
    if bad:
        raise ValueError(f"data spec tasks {sorted(bad)}: use {ANCHOR_TASKS}")
    per_image = spec.pop("per_image", 4)
    limit = spec.pop("limit", None)
    exclude = spec.pop("exclude", []) or []
    prior_mode = str(spec.pop("prior", "paper"))
    raw_of = prior_source(prior_mode, cache_dir, spec.pop("ocr_cache", None), ocr_engine)
    excluded = _excluded_images([exclude] if isinstance(exclude, str) else exclude)
    rng = np.random.default_rng(int(spec.pop("seed", seed)))
    spec_path = spec.get("path", "")
    out: list[AnchorInstance] = []
    if kind == "instances":
        from ocrkit.anchoring.data import read_instances

        out = read_instances(spec.pop("path"))
    elif kind in ("icdar", "jsonl", "synth"):
        if kind == "synth":
            num = int(spec.pop("num_images", 1000))
            base = Path(cache_dir).expanduser() if cache_dir else paths.cache_dir()
            root = base / "qmask-synth"
            path = render_scenes(root / f"scenes-seed{seed}-n{num}", num, seed)
        else:
            path = Path(spec.pop("path"))
        for img in read_jsonl(
            path, spec.pop("category", "scene"), source=kind if kind == "synth" else Path(path).stem
        ):
            if str(img.path) not in excluded:
                out += instances_from_image(img, rng, tasks, per_image, raw=raw_of(img))
    elif kind == "funsd":
        root = spec.pop("path")
        vqa_masks = bool(spec.pop("vqa_masks", True))
        anchor_tasks = tuple(t for t in tasks if t != "vqa")
        if anchor_tasks:
            for img in read_funsd(root):
                if str(img.path) not in excluded:
                    out += instances_from_image(img, rng, anchor_tasks, per_image, raw=raw_of(img))
        if "vqa" in tasks:
            kind_vqa = prior_kind(prior_mode, "document")
            if kind_vqa == "ocr":
                raise ValueError("data spec prior 'ocr' is not supported for FUNSD vqa questions")
            # gt: the form's words, as before; paper / none: documents get no OCR prior
            vqa = funsd_vqa(root, vqa_masks, priors=kind_vqa == "gt")
            out += [v for v in vqa if v.image not in excluded]
    else:
        raise ValueError(f"data spec type {kind!r}: use icdar, funsd, jsonl, synth or instances")
    if spec:
        raise ValueError(f"unknown data spec keys {sorted(spec)} for type {kind!r}")
    if kind != "synth":
        out = _drop_bench_images(out, holdout, f"{kind} {Path(str(spec_path)).name}")
    if limit is not None:
        out = out[: int(limit)]
    for i, inst in enumerate(out):
        inst.id = inst.id or f"{kind}-{i:07d}"
    return out
