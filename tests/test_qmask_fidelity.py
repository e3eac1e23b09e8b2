"""Q-Mask paper fidelity: V_raw OCR priors (Eq. 9, S2.1) and native box coordinates (S1.2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrkit.anchoring.coords import family_adapter, native_answer, native_question, to_model_box
from ocrkit.anchoring.data import AnchorDataset, AnchorInstance
from ocrkit.anchoring.generate import build_instances, t2r_answer
from ocrkit.anchoring.raw_ocr import coverage, raw_prior
from ocrkit.anchoring.spi import SPIConfig


class FakeOCR:
    """Reads "OPFN" (an OCR error) over the first word and a false detection elsewhere."""

    name = "fake"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, image: np.ndarray) -> list:
        self.calls += 1
        assert image.shape == (80, 160, 3)
        return [("OPFN", [8, 8, 62, 32]), ("noise", [100, 5, 150, 20])]


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.full((80, 160, 3), 200, np.uint8))
    inst = [
        {"text": "OPEN", "points": [[10, 10], [60, 10], [60, 30], [10, 30]]},
        {"text": "EXIT", "points": [[90, 40], [140, 40], [140, 60], [90, 60]]},
    ]
    (tmp_path / "annotations.jsonl").write_text(
        json.dumps({"image": "images/a.png", "instances": inst}) + "\n"
    )
    return tmp_path


def _spec(root: Path, **kw) -> dict:
    return {"type": "icdar", "path": str(root), "tasks": ["r2t"], "per_image": None, **kw}


# --- 7. SPI priors: V_raw of an OCR engine for scene text ------------------------------------------
def test_scene_prior_is_the_raw_ocr_output_with_unmatched_items_kept(scene, tmp_path) -> None:
    engine, cache = FakeOCR(), tmp_path / "vraw.jsonl"
    out = build_instances(_spec(scene, ocr_cache=str(cache)), ocr_engine=engine)
    assert engine.calls == 1  # once per image, not per instance
    by_answer = {i.answer: i.prior for i in out}
    # OPEN [10,10,60,30] lies inside the raw line [8,8,62,32]: coverage 1 -> its target
    assert by_answer["OPEN"] == [
        {"text": "OPFN", "box": [8, 8, 62, 32], "target": True},
        {"text": "noise", "box": [100, 5, 150, 20], "target": False},  # unmatched: kept
    ]
    # EXIT was missed by the engine: its prior has no target line (the raw output as it is)
    assert [p["target"] for p in by_answer["EXIT"]] == [False, False]
    # the cache is keyed by the image's hash: a renamed copy is never read again
    shutil.copy(scene / "images" / "a.png", scene / "images" / "b.png")
    lines = (scene / "annotations.jsonl").read_text()
    (scene / "annotations.jsonl").write_text(lines + lines.replace("a.png", "b.png"))
    again = FakeOCR()
    out2 = build_instances(_spec(scene, ocr_cache=str(cache)), ocr_engine=again)
    assert again.calls == 0 and len(out2) == 4
    assert len(cache.read_text().splitlines()) == 1


def test_gamma_one_prompt_carries_the_raw_ocr_lines(scene, tmp_path) -> None:
    out = build_instances(_spec(scene, ocr_cache=str(tmp_path / "c.jsonl")), ocr_engine=FakeOCR())
    ds = AnchorDataset(out, SPIConfig(gammas=[1.0]))
    np.random.seed(0)
    prompt = ds[0]["prompt"]
    assert "[8, 8, 62, 32] OPFN" in prompt and "[100, 5, 150, 20] noise" in prompt
    assert "OPEN" not in prompt.split("What is")[0]  # never the ground truth at gamma = 1


def test_prior_options_and_documents(scene, tmp_path) -> None:
    gt = build_instances(_spec(scene, prior="gt"))  # ocrkit's earlier prior: the annotation
    assert [p["text"] for p in gt[0].prior] == ["OPEN", "EXIT"]
    assert all(i.prior == [] for i in build_instances(_spec(scene, prior="none")))
    engine = FakeOCR()
    docs = build_instances(
        _spec(scene, category="document", ocr_cache=str(tmp_path / "d.jsonl")), ocr_engine=engine
    )
    assert engine.calls == 0 and all(i.prior == [] for i in docs)  # documents: no OCR prior
    with pytest.raises(ValueError, match="prior"):
        build_instances(_spec(scene, prior="exact"))


def test_coverage_and_raw_prior_by_hand() -> None:
    assert coverage([0, 0, 10, 10], [5, 0, 20, 10]) == 0.5
    assert coverage([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    items = raw_prior([("A", [-5, 0, 8, 10]), (" ", [0, 0, 1, 1])], [[0, 0, 10, 10]], 50, 50)
    assert items == [{"text": "A", "box": [0, 0, 8, 10], "target": True}]  # clipped; blank dropped


# --- 8. training coordinates in each family's convention ------------------------------------------
def test_family_coordinates_by_hand() -> None:
    box, w, h = [16, 8, 64, 40], 160, 80
    for family in ("qwen2_vl", "qwen3_vl"):  # 0-1000 grid
        assert to_model_box(family_adapter(family), box, w, h) == [100, 100, 400, 500]
    # Qwen2.5-VL: pixels of the smart-resized image; 80x160 -> 84x168 (multiples of 28)
    q25 = family_adapter("qwen2_5_vl")
    assert q25.coords.resized(w, h) == (168, 84)
    assert to_model_box(q25, box, w, h) == [17, 8, 67, 42]  # 16.8, 8.4, 67.2, 42.0
    assert to_model_box(family_adapter("qwen2_vl", coords="absolute"), box, w, h) == box
    with pytest.raises(ValueError, match="coords: absolute"):
        family_adapter("llava")


def test_qwen25_adapter_follows_the_processor_resize() -> None:
    pytest.importorskip("transformers")
    from ocrkit.testing.tiny_vlm import tiny_processor

    processor = tiny_processor("qwen2_5_vl")
    image = np.zeros((80, 160, 3), np.uint8)
    grid = processor.image_processor(images=[image], return_tensors="pt")["image_grid_thw"][0]
    adapter = family_adapter("qwen2_5_vl", processor.image_processor)
    assert adapter.coords.resized(160, 80) == (int(grid[2]) * 14, int(grid[1]) * 14)
    big = np.zeros((600, 900, 3), np.uint8)  # over the tiny processor's 50176-pixel limit
    grid = processor.image_processor(images=[big], return_tensors="pt")["image_grid_thw"][0]
    assert adapter.coords.resized(900, 600) == (int(grid[2]) * 14, int(grid[1]) * 14)


def test_dataset_writes_every_box_in_the_model_convention(tmp_path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((80, 160, 3), 200, np.uint8))
    box = [16, 8, 64, 40]
    prior = [{"text": "OPEN", "box": box, "target": True}]
    r2t = AnchorInstance(
        str(tmp_path / "a.png"),
        "What is the text at location [16, 8, 64, 40]?",
        "OPEN",
        task="r2t",
        box=box,
        prior=prior,
    )
    t2r = AnchorInstance(
        str(tmp_path / "a.png"), 'Where is "OPEN" located in the image?', t2r_answer([box]),
        task="t2r", prior=prior,
    )  # fmt: skip
    ds = AnchorDataset([r2t, t2r], SPIConfig(gammas=[1.0]), coords=family_adapter("qwen2_vl"))
    np.random.seed(0)
    a, b = ds[0], ds[1]
    assert a["question"] == "What is the text at location [100, 100, 400, 500]?"
    assert "[100, 100, 400, 500] OPEN" in a["prompt"] and a["answer"] == "OPEN"
    assert json.loads(b["answer"]) == [{"bbox_2d": [100, 100, 400, 500]}]
    old = AnchorDataset([r2t], SPIConfig(gammas=[1.0]))[0]  # coords=None: original pixels
    assert old["question"] == r2t.question and "[16, 8, 64, 40] OPEN" in old["prompt"]
    # hand-written questions and non-JSON answers are left as written
    q = family_adapter("qwen2_vl")
    assert native_question("Read [16, 8, 64, 40]", "r2t", box, q, 160, 80) == "Read [16, 8, 64, 40]"
    assert native_answer("none here", "t2r", q, 160, 80) == "none here"


def test_tabench_engine_converts_both_ways() -> None:
    from ocrkit.anchoring.inference import AnchorResult, QMaskAnchorer, QMaskPredictor

    class Fake(QMaskPredictor):
        def __init__(self) -> None:  # no model: the Qwen2-VL convention and canned answers
            self.adapter, self.prompts = family_adapter("qwen2_vl"), []

        def anchor(self, images, query, prior=(), max_new_tokens=None) -> AnchorResult:
            self.prompts.append(query)
            return AnchorResult('[{"bbox_2d": [100, 100, 400, 500]}]', boxes=[[]])

    fake = Fake()
    engine = QMaskAnchorer(fake)
    image = np.zeros((80, 160, 3), np.uint8)
    engine.r2t(image, [16, 8, 64, 40])
    assert fake.prompts[-1] == "What is the text at location [100, 100, 400, 500]?"
    assert engine.t2r(image, "OPEN") == [[16.0, 8.0, 64.0, 40.0]]
