"""One EXIF-orientation policy for every image reader (docs/architecture.md, "One image loader").

A 40x20 photo stored sideways (EXIF Orientation 6 or 8) must come out upright, 20 wide and 40
tall, through every path that reads images: the loader itself, ``ocrkit serve`` uploads, the
data layer's folder dataset, TABench's size reader, builder, local engines and remote client,
the anchoring data builder and size reader, and the command line. Before the one loader, PIL paths kept the
stored 40x20 while OpenCV paths turned it, so boxes differed between HTTP and local runs.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from ocrkit.data.image_io import (
    apply_orientation,
    decode_image,
    exif_orientation,
    image_size,
    read_image,
)

STORED = (20, 40)  # (height, width) as stored in the file
UPRIGHT = (40, 20)  # (height, width) as viewed: rotated by 90 degrees
RED, BLUE = (230, 20, 20), (20, 20, 230)


def _stored_pixels() -> np.ndarray:
    """Left half red, right half blue: after orientation 6 red is on top, after 8 at the bottom."""
    image = np.zeros((*STORED, 3), np.uint8)
    image[:, :20] = RED
    image[:, 20:] = BLUE
    return image


def _encode(fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    options = {"quality": 95} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(_stored_pixels()).save(buf, fmt, exif=exif.tobytes(), **options)
    return buf.getvalue()


@pytest.fixture(params=[6, 8])
def photo(request, tmp_path):
    """``(path, orientation)`` of a sideways JPEG; the reference decode is checked upright."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(_encode("JPEG", request.param))
    return path, request.param


def _check_upright(image: np.ndarray, orientation: int) -> None:
    assert image.shape == (*UPRIGHT, 3) and image.dtype == np.uint8
    top, bottom = image[5:15, 5:15].mean((0, 1)), image[25:35, 5:15].mean((0, 1))
    red_top = orientation == 6  # the stored left column is the viewed top row for 6
    assert np.abs(top - (RED if red_top else BLUE)).max() < 20
    assert np.abs(bottom - (BLUE if red_top else RED)).max() < 20


def test_loader_turns_the_photo_upright_and_sizes_agree(photo):
    path, orientation = photo
    assert exif_orientation(path) == orientation
    image = read_image(path)
    _check_upright(image, orientation)
    assert np.array_equal(decode_image(path.read_bytes()), image)
    assert image_size(path) == image_size(path.read_bytes()) == (UPRIGHT[1], UPRIGHT[0])
    with Image.open(path) as raw:
        assert raw.size == (STORED[1], STORED[0])  # PIL alone keeps the stored frame


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_format_and_orientation_matches_pil_exif_transpose(fmt, orientation):
    data = _encode(fmt, orientation)
    with Image.open(io.BytesIO(data)) as im:
        from PIL import ImageOps

        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert np.array_equal(decode_image(data), expected)
    assert image_size(data) == (expected.shape[1], expected.shape[0])
    assert np.array_equal(apply_orientation(_stored_pixels(), orientation), expected)


def test_every_reader_gives_the_same_pixels_and_size(photo, tmp_path):
    path, orientation = photo
    reference = read_image(path)
    width, height = reference.shape[1], reference.shape[0]

    # ocrkit serve: a data URL upload, size from the header, then the decode
    from ocrkit.serve import protocol

    raw = path.read_bytes()
    assert protocol.image_header_size(raw, "x") == (width, height)
    url = "data:image/jpeg;base64," + base64.b64encode(raw).decode()
    assert np.array_equal(protocol.decode_data_url(url, "x"), reference)

    # the data layer: a labels.tsv folder dataset
    from ocrkit.data.folder import folder_dataset

    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "photo.jpg").write_bytes(raw)
    (tmp_path / "set" / "labels.tsv").write_text("photo.jpg\tword\n", encoding="utf-8")
    sample = folder_dataset(tmp_path / "set")[0]
    assert np.array_equal(sample.image, reference)

    # TABench: a bench line without width/height, the builder, the local engines' loader
    from ocrkit.tabench.builder import image_candidates
    from ocrkit.tabench.local import load_rgb as tabench_load
    from ocrkit.tabench.schema import parse_record
    from ocrkit.tabench.sources import AnnotatedImage, Region

    query = parse_record({"id": "q", "image": path.name, "box": [1, 1, 9, 9]}, path.parent)
    assert (query.width, query.height) == (width, height)
    img = AnnotatedImage(path, [Region("HI", [1, 1, 9, 9])], "scene", "test")
    candidates = image_candidates(img, tmp_path)
    assert (candidates.r2t[0].width, candidates.r2t[0].height) == (width, height)
    assert np.array_equal(tabench_load(str(path)), reference)

    # TABench's remote client sends upright pixels (lossless), whatever the server does with EXIF
    from ocrkit.tabench.client import image_data_url

    sent = image_data_url(str(path))
    assert sent.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(sent.partition(",")[2]))) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), reference)  # PIL alone agrees

    # anchoring: the data builder's size reader and image loader
    from ocrkit.anchoring.data import load_rgb as anchoring_load
    from ocrkit.anchoring.generate import instances_from_image

    img = AnnotatedImage(path, [Region("HI", [1, 1, 9, 9])], "scene", "test")
    inst = instances_from_image(img, np.random.default_rng(0), ("r2t",), raw=[])[0]
    assert (inst.width, inst.height) == (width, height)
    assert np.array_equal(anchoring_load(path), reference)

    # the command line: `ocrkit recognize` and `ocrkit anchor` read through these
    from ocrkit.cli.inputs import read_one_image
    from ocrkit.models.preprocess import to_rgb_array

    assert np.array_equal(to_rgb_array(str(path)), reference)
    assert np.array_equal(read_one_image(str(path), anchoring_load), reference)


def test_anchoring_masks_are_read_upright(tmp_path):
    from ocrkit.anchoring.data import AnchorInstance, instance_mask

    stored = np.zeros(STORED, np.uint8)
    stored[:, :20] = 255  # the left half: the top half once turned by orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "mask.png", exif=exif.tobytes())
    mask_file = str(tmp_path / "mask.png")
    inst = AnchorInstance(image="x.png", question="q", answer="a", mask=mask_file)
    mask = instance_mask(inst, 20, 40)
    assert mask.shape == UPRIGHT and mask[:20].min() == 255 and mask[20:].max() == 0


def test_funsd_sizes_are_read_after_orientation(tmp_path):
    from ocrkit.anchoring.generate import funsd_vqa

    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images" / "form.png").write_bytes(_encode("PNG", 6))
    word = {"text": "Name:", "box": [1, 1, 9, 9]}
    answer = {"text": "Ada", "box": [1, 20, 9, 30]}
    form = [
        {"id": 0, "label": "question", "text": "Name:", "box": [1, 1, 9, 9], "words": [word],
         "linking": [[0, 1]]},
        {"id": 1, "label": "answer", "text": "Ada", "box": [1, 20, 9, 30], "words": [answer],
         "linking": [[0, 1]]},
    ]  # fmt: skip
    (tmp_path / "annotations" / "form.json").write_text(json.dumps({"form": form}))
    (vqa,) = funsd_vqa(tmp_path)
    assert (vqa.width, vqa.height) == (UPRIGHT[1], UPRIGHT[0])
