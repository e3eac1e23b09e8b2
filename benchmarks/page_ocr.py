"""Page-level OCR end to end: ``ocrkit read``'s pipeline against RapidOCR's, in the same run.

    OMP_NUM_THREADS=1 python benchmarks/page_ocr.py --data ../shared/data \
        --sets ic15_train:500 sroie_train:526 --threads 1 --out runs/page_ocr.json
    python benchmarks/page_ocr.py --merge runs/a.json runs/b.json --out docs/ocr.json

For each image both pipelines run one after the other on the same decoded image: ocrkit
(PP-OCRv6 small detector of the ``rapidocr`` wheel + ocrkit's DB post-processing with the
wheel's parameters, so that its boxes are the wheel's + the embedded ``default`` recognizer,
torch) and ``rapidocr`` 3.x's own ``RapidOCR()`` with its defaults (the
same detector, its angle classifier, its PP-OCRv6 small recognizer). Seconds per image cover
detection to the final lines (image decoding and model loading excluded). ``N`` in ``SET:N`` takes
the first N lines of ``annotations.jsonl`` (a FUNSD folder, ``funsd_test``: its first N forms in
file order). On IC15 and FUNSD (word ground truth) RapidOCR runs with
``return_word_box=True`` (its timing includes that step) and ocrkit's lines are also split into
words (cut where the CTC alignment puts the characters, ``ocrkit read``'s default; for PaddleOCR's
DB parameters also in proportion to character offsets, from the same readings); all are scored
as words as well. Two more
rows read each page again from the boxes of PaddleOCR's own DB post-processing parameters
(``PADDLE_DB``, same probability map; not timed), which ``ocrkit read`` uses by default since
this comparison.

Scoring (one-to-one greedy matching by IoU, ICDAR-2015 style): a prediction covering a don't-care
region (``ignore``) by more than half of its own area is removed; a match needs IoU >= 0.5;
detection P = matches / predictions, R = matches / cared-for ground truth. End to end, a match
needs IoU >= 0.5 and equal text after the protocol (``parseq36`` for IC15 and FUNSD words:
lowercase 0-9a-z; ``full95`` for SROIE lines: case-sensitive printable ASCII, spaces kept, runs
of whitespace collapsed; no length limit); ground truth that the protocol empties is don't-care.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import shapely

from ocrkit.data.image_io import read_image
from ocrkit.tabench.geometry import iou_matrix
from ocrkit.text.protocols import PROTOCOLS
from ocrkit.utils.hardware import describe_hardware

PROTOCOL = {"ic15_train": "parseq36", "sroie_train": "full95", "funsd_test": "parseq36"}
WORD_SETS = {"ic15_train", "funsd_test"}  # word ground truth: scored as words too


def load_set(root: Path, name: str, limit: int) -> list[dict]:
    """The first ``limit`` (0: all) pages of a set: ``{"image", "instances": [{"points",
    "text", "ignore"}]}`` from ``annotations.jsonl``, or from a FUNSD folder's
    ``annotations/*.json`` (in file order; its words, an empty word don't-care)."""
    folder = root / name
    if (folder / "annotations").is_dir():
        records = [_funsd_page(file) for file in sorted((folder / "annotations").glob("*.json"))]
    else:
        with open(folder / "annotations.jsonl", encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    return records[:limit] if limit else records


def _funsd_page(file: Path) -> dict:
    form = json.loads(file.read_text(encoding="utf-8"))["form"]
    instances = []
    for word in (w for entry in form for w in entry.get("words", [])):
        x1, y1, x2, y2 = (float(v) for v in word["box"])
        text = str(word.get("text") or "").strip()
        points = [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
        instances.append({"points": points, "text": text, "ignore": not text})
    return {"image": f"images/{file.stem}.png", "instances": instances}


class Counts:
    """Matches, predictions and ground truth for detection and end to end."""

    def __init__(self) -> None:
        self.det = [0, 0, 0]
        self.e2e = [0, 0, 0]

    @staticmethod
    def prf(tp: int, npred: int, ngt: int) -> dict[str, float]:
        p = tp / npred if npred else 0.0
        r = tp / ngt if ngt else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"P": round(100 * p, 2), "R": round(100 * r, 2), "F": round(100 * f, 2)}

    def summary(self, texts: bool) -> dict:
        out = {"det": self.prf(*self.det), "det_counts": self.det}
        if texts:
            out |= {"e2e": self.prf(*self.e2e), "e2e_counts": self.e2e}
        return out


def _greedy(iou: np.ndarray, allowed: np.ndarray) -> int:
    score = np.where(allowed & (iou >= 0.5), iou, -1.0)
    matches = 0
    while score.size and score.max() >= 0.5:
        i, j = np.unravel_index(int(score.argmax()), score.shape)
        matches += 1
        score[i, :] = -1.0
        score[:, j] = -1.0
    return matches


def score_image(counts: Counts, preds: list, texts: list | None, gts: list, norm) -> None:
    """Add one image's predictions (polygons, texts or None) against its instances."""
    care = [g for g in gts if not g["ignore"]]
    dc = shapely.union_all([shapely.Polygon(g["points"]).buffer(0) for g in gts if g["ignore"]])
    keep = []
    for k, poly in enumerate(preds):
        geom = shapely.Polygon(poly).buffer(0)
        if geom.area <= 0 or (not dc.is_empty and geom.intersection(dc).area > 0.5 * geom.area):
            continue
        keep.append(k)
    preds = [preds[k] for k in keep]
    iou = iou_matrix(preds, [g["points"] for g in care]) if preds and care else np.zeros((0, 0))
    iou = iou.reshape(len(preds), len(care))
    counts.det[0] += _greedy(iou, np.ones_like(iou, bool))
    counts.det[1] += len(preds)
    counts.det[2] += len(care)
    if texts is None:
        return
    texts = [norm(texts[k]) for k in keep]
    gt_texts = [norm(g["text"]) for g in care]
    valid_gt = np.array([bool(t) for t in gt_texts], bool)
    # a cared-for box whose text the protocol empties is don't-care end to end: predictions
    # matching it are not counted either
    blocked = (iou >= 0.5)[:, ~valid_gt].any(1) if (~valid_gt).any() else np.zeros(len(preds), bool)
    allowed = np.array([[p == g for g in gt_texts] for p in texts], bool).reshape(iou.shape)
    counts.e2e[0] += _greedy(iou[:, valid_gt], allowed[:, valid_gt])
    counts.e2e[1] += int(sum(1 for t, b in zip(texts, blocked) if t and not b))
    counts.e2e[2] += int(valid_gt.sum())


def run_set(root: Path, name: str, limit: int, threads: int, model: str) -> Iterator[dict]:
    """Run both pipelines on the set; yields the results so far every 25 images."""
    import torch

    from ocrkit.ocr import PageReader, TextDetector
    from ocrkit.ocr.postprocess import PADDLE_DB, WHEEL_DB

    torch.set_num_threads(threads)
    protocol = PROTOCOL.get(name, "parseq36")
    proto = PROTOCOLS.build(protocol, max_length=None)
    norm = proto.normalize_prediction
    t0 = time.perf_counter()
    reader = PageReader(model, TextDetector(db=WHEEL_DB, threads=threads))  # the wheel's boxes
    load_ours = time.perf_counter() - t0
    from rapidocr import RapidOCR

    t0 = time.perf_counter()
    rapid = RapidOCR(
        params={
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )
    rapid(np.full((64, 256, 3), 255, np.uint8))  # loads its models (lazily created)
    load_rapid = time.perf_counter() - t0
    word_level = name in WORD_SETS  # word ground truth: RapidOCR's word boxes too
    keys = ("ocrkit", "ocrkit_words", "ocrkit_paddle_db", "ocrkit_paddle_db_words",
            "ocrkit_paddle_db_words_proportional", "rapidocr", "rapidocr_words", "det_wheel",
            "det_paddle")  # fmt: skip
    # the same readings with word boxes cut in proportion to character offsets (no positions)
    proportional = PageReader(WithoutPositions(reader.recognizer), reader.detector)
    systems = {k: Counts() for k in keys}
    seconds = {"ocrkit": 0.0, "rapidocr": 0.0}
    word_failures = 0
    records = load_set(root, name, limit)
    for n, rec in enumerate(records, 1):
        image = read_image(root / name / rec["image"])
        gts = rec["instances"]
        t0 = time.perf_counter()
        prob, frame = reader.detector.probability(image)
        quads, scores = reader.detector.boxes(prob, frame, image.shape[:2])
        lines = reader.read_regions(image, quads, scores)
        seconds["ocrkit"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        out = rapid(np.ascontiguousarray(image[..., ::-1]), return_word_box=word_level)
        seconds["rapidocr"] += time.perf_counter() - t0
        paddle, paddle_scores = reader.detector.boxes(prob, frame, image.shape[:2], PADDLE_DB)
        # the same page read again from PaddleOCR's boxes (not timed): what switching would give
        paddle_lines = reader.read_regions(image, paddle, paddle_scores)
        paddle_words = [w for ln in proportional.read_regions(image, paddle, paddle_scores)
                        for w in ln.words]  # fmt: skip
        polys, texts = [w.polygon for w in paddle_words], [w.text for w in paddle_words]
        score_image(systems["ocrkit_paddle_db_words_proportional"], polys, texts, gts, norm)
        score_image(systems["det_wheel"], [q.tolist() for q in quads], None, gts, norm)
        score_image(systems["det_paddle"], [q.tolist() for q in paddle], None, gts, norm)
        for key, found in (("ocrkit", lines), ("ocrkit_paddle_db", paddle_lines)):
            polys, texts = [ln.polygon for ln in found], [ln.text for ln in found]
            score_image(systems[key], polys, texts, gts, norm)
            words = [w for ln in found for w in ln.words]
            polys, texts = [w.polygon for w in words], [w.text for w in words]
            score_image(systems[f"{key}_words"], polys, texts, gts, norm)
        boxes = [] if out.boxes is None else [np.asarray(b).tolist() for b in out.boxes]
        score_image(systems["rapidocr"], boxes, list(out.txts or []), gts, norm)
        if word_level:
            found = [w for line in (getattr(out, "word_results", None) or ()) for w in line]
            words_ok = [w for w in found if _is_word(w)]
            word_failures += len(words_ok) < len(found)  # its raw per-line form: not scored
            polys = [np.asarray(w[2], float).tolist() for w in words_ok]
            score_image(systems["rapidocr_words"], polys, [str(w[0]) for w in words_ok], gts, norm)
        if n % 25 == 0 or n == len(records):
            e2e = {k: systems[k].summary(True)["e2e"]["F"] for k in ("ocrkit", "rapidocr")}
            print(f"{name}: {n}/{len(records)} e2e F {e2e}", flush=True)
            result = summarize(
                name, n, len(records), proto, (load_ours, load_rapid), seconds, systems
            )
            if word_level:
                result["rapidocr_images_without_word_boxes"] = word_failures
            yield result


class WithoutPositions:
    """A predictor answering as ``recognizer`` without ``char_positions`` (so word boxes are cut
    in proportion to character offsets), from a cache of the crops it has read: no second
    recognition of a page."""

    def __init__(self, recognizer) -> None:
        self.recognizer, self.cache = recognizer, {}

    def predict(self, crops: list, batch_size: int = 16) -> list:
        keys = [hashlib.sha1(c.tobytes() + str(c.shape).encode()).hexdigest() for c in crops]
        todo = {k: c for k, c in zip(keys, crops) if k not in self.cache}
        if todo:
            read = self.recognizer.predict(list(todo.values()), batch_size=batch_size)
            self.cache.update(zip(todo, read))
        return [dataclasses.replace(self.cache[k], char_positions=[]) for k in keys]


def _is_word(entry) -> bool:
    """``(text, score, 4 points)``, RapidOCR's word entry once it has computed word boxes."""
    try:
        return len(entry) == 3 and np.asarray(entry[2], float).shape == (4, 2)
    except (TypeError, ValueError):
        return False


def summarize(name, n, planned, proto, loads, seconds, systems) -> dict:
    """The results after the first ``n`` of ``planned`` images (written as the run goes)."""
    word_level = "rapidocr_words" in systems and name in WORD_SETS
    return {
        "set": name,
        "images": n,
        "complete": n == planned,
        "selection": f"first {n} of annotations.jsonl",
        "protocol": proto.describe(),
        "load_seconds": {"ocrkit": round(loads[0], 2), "rapidocr": round(loads[1], 2)},
        "seconds_per_image": {k: round(v / n, 3) for k, v in seconds.items()},
        "systems": {
            k: c.summary(not k.startswith("det"))
            for k, c in systems.items()
            if word_level or not k.endswith("words")
        },
        "rapidocr_word_boxes": word_level,
    }


NAMES = {
    "ocrkit": "ocrkit read, the wheel's DB parameters (lines)",
    "ocrkit_words": "ocrkit read, the wheel's DB parameters (words split from lines)",
    "ocrkit_paddle_db": "ocrkit read, PaddleOCR's DB parameters: its default (lines)",
    "ocrkit_paddle_db_words": "ocrkit read, PaddleOCR's DB parameters: its default (words)",
    "ocrkit_paddle_db_words_proportional": "the same, word boxes in proportion to offsets",
    "rapidocr": "RapidOCR 3.x full pipeline (lines)",
    "rapidocr_words": "RapidOCR 3.x full pipeline (its word boxes)",
    "det_wheel": "detector only, wheel's DB parameters",
    "det_paddle": "detector only, PaddleOCR's DB parameters",
}


def table(result: dict) -> str:
    rows = [
        "| set | system | det P | det R | det F | e2e P | e2e R | e2e F | s/image |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for res in result["sets"]:
        for key, s in res["systems"].items():
            e = s.get("e2e")
            cells = [f"{s['det'][m]:.2f}" for m in "PRF"]
            cells += [f"{e[m]:.2f}" for m in "PRF"] if e else ["-"] * 3
            sec = res["seconds_per_image"].get(key)
            cells.append(f"{sec:.2f}" if sec is not None else "-")
            rows.append(
                f"| {res['set']} ({res['images']}) | {NAMES[key]} | " + " | ".join(cells) + " |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("OCRKIT_DATA", "../shared/data"))
    parser.add_argument("--sets", nargs="+", default=["ic15_train:500", "sroie_train:526"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="default")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="combine earlier results")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads(Path(p).read_text()) for p in args.merge]
        result = {**parts[0], "sets": [s for p in parts for s in p["sets"]]}
        result["command"] = " ; ".join(dict.fromkeys(p["command"] for p in parts))
    else:
        result = {
            "hardware": describe_hardware("cpu"),
            "threads": args.threads,
            "model": args.model,
            "command": "OMP_NUM_THREADS=1 python benchmarks/page_ocr.py --sets "
            + " ".join(args.sets)
            + f" --threads {args.threads}",
            "sets": [],
        }
        print(f"hardware: {result['hardware']}; threads {args.threads}", flush=True)
        for item in args.sets:
            name, _, limit = item.partition(":")
            result["sets"].append({})
            for partial in run_set(
                Path(args.data), name, int(limit or 0), args.threads, args.model
            ):
                result["sets"][-1] = partial
                if args.out:
                    write_json(args.out, result)
    print(f"hardware: {result['hardware']}; threads {result['threads']}")
    print(table(result))
    for res in result["sets"]:
        sec = res["seconds_per_image"]
        print(
            f"{res['set']}: ocrkit / RapidOCR seconds per image = {sec['ocrkit'] / sec['rapidocr']:.2f}; "
            f"protocol {res['protocol']}; load s {res['load_seconds']}"
        )
    if args.out:
        write_json(args.out, result)


def write_json(path: str, result: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
