"""Tiny random Qwen2-VL / Qwen2.5-VL / Qwen3-VL models for tests, demos and benchmarks.

Nothing is downloaded: a byte-level BPE tokenizer is trained offline with ``tokenizers`` on a
small built-in corpus (the Qwen pre-tokenizer, the Qwen special tokens), wrapped in the real
``Qwen2Tokenizer`` and processor classes (``Qwen2VLProcessor``, ``Qwen2_5_VLProcessor``,
``Qwen3VLProcessor`` with ``Qwen2VLImageProcessor``), saved with ``save_pretrained`` and read
back with ``AutoProcessor.from_pretrained``, so the real preprocessing path runs. Models are
built from configs (``AutoModelForImageTextToText.from_config``) with random weights.

The chat templates below reproduce what the released templates render for plain
image + text messages (Qwen2-VL/Qwen2.5-VL add the default system prompt, Qwen3-VL does not).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
SIZES = ("tiny", "mid")
_VERSION = "1"  # bump when the corpus, tokens or template change (invalidates caches)

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

QWEN2_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

QWEN3_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "What is the text at location [12, 40, 118, 76]?",
    'Where is "OPEN" located in the image?',
    '[{"bbox_2d": [104, 230, 388, 301]}, {"bbox_2d": [7, 9, 64, 33]}]',
    "OCR prior (may be incomplete or wrong):",
    "Read all the text in the image.",
    "What is the value of the field Date? The answer is 12/03/1998.",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.",
    "Street sign, shop front, receipt, invoice, form, total, name, address, phone, open, exit.",
    "0123456789 0.5 1.0 100 200 300 400 500 600 700 800 900 1000",
    "You are a helpful assistant.",
]


def _corpus() -> list[str]:
    import string

    lines = list(_CORPUS)
    lines.append(string.ascii_letters + string.digits + string.punctuation)
    lines += [" ".join(str(i) for i in range(k, k + 50)) for k in range(0, 1000, 50)]
    return lines * 4


def train_tokenizer(vocab_size: int = 640) -> Any:
    """A ``Qwen2Tokenizer`` over a byte-level BPE trained here (no files, no network)."""
    import json

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer)
    vocab = bpe.get_vocab()

    merges = json.loads(bpe.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]
    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True) for t in SPECIAL_TOKENS[1:]]}
    )
    return tok


def build_processor(family: str, max_pixels: int = 224 * 224, min_pixels: int | None = None) -> Any:
    """The real processor class of ``family`` around :func:`train_tokenizer`."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    _check_family(family)
    tokenizer = train_tokenizer()
    patch = 16 if family == "qwen3_vl" else 14
    factor = patch * 2
    image_kwargs: dict[str, Any] = {
        "patch_size": patch,
        "merge_size": 2,
        "temporal_patch_size": 2,
        "min_pixels": min_pixels or factor * factor,
        "max_pixels": max_pixels,
    }
    if family == "qwen3_vl":  # Qwen3-VL normalizes with mean = std = 0.5
        image_kwargs.update(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    image_processor = Qwen2VLImageProcessor(**image_kwargs)
    cls = {
        "qwen2_vl": Qwen2VLProcessor,
        "qwen2_5_vl": Qwen2_5_VLProcessor,
        "qwen3_vl": Qwen3VLProcessor,
    }[family]
    template = QWEN3_TEMPLATE if family == "qwen3_vl" else QWEN2_TEMPLATE
    video = _video_processor(family)
    return cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video,
        chat_template=template,
    )


def _video_processor(family: str) -> Any:
    if family == "qwen3_vl":
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

        return Qwen3VLVideoProcessor(patch_size=16)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    return Qwen2VLVideoProcessor()


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown tiny family {family!r}; use one of {', '.join(FAMILIES)}")


def cache_root() -> Path:
    base = os.environ.get("OCRKIT_CACHE")
    root = Path(base).expanduser() if base else Path(tempfile.gettempdir()) / "ocrkit-tiny"
    return root / f"tiny-processors-v{_VERSION}"


def tiny_processor(family: str, cache_dir: str | Path | None = None) -> Any:
    """The tiny processor of ``family``, built once and cached as a processor folder."""
    from transformers import AutoProcessor

    from ocrkit.utils.io import atomic_write_text

    _check_family(family)
    root = Path(cache_dir) if cache_dir else cache_root()
    folder = root / family
    if not (folder / ".complete").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=_mkdir(root)))
        build_processor(family).save_pretrained(tmp)
        atomic_write_text(tmp / ".complete", "ok\n")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process won the race: use its folder
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return AutoProcessor.from_pretrained(folder)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _token_ids(tokenizer: Any) -> dict[str, int]:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


_DIMS = {
    # (text hidden, text layers, heads, kv heads, intermediate, vision width, vision depth)
    "tiny": (64, 2, 4, 2, 128, 32, 2),
    "mid": (512, 8, 8, 4, 1536, 256, 6),
}


def tiny_config(family: str, tokenizer: Any, size: str = "tiny") -> Any:
    """A random-init config of ``family`` whose vocabulary and token ids match ``tokenizer``."""
    from transformers import AutoConfig

    _check_family(family)
    if size not in _DIMS:
        raise ValueError(f"unknown size {size!r}; use one of {', '.join(SIZES)}")
    hidden, layers, heads, kv, inter, vwidth, vdepth = _DIMS[size]
    head_dim = hidden // heads
    half = head_dim // 2
    vocab = len(tokenizer)
    text: dict[str, Any] = {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "max_position_embeddings": 4096,
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    }
    vheads = max(2, vwidth // 16)
    if family == "qwen3_vl":
        text["head_dim"] = head_dim
        t = half - 2 * (half // 4)
        text["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": 5e5,
            "mrope_section": [t, half // 4, half // 4],
            "mrope_interleaved": True,
        }
        vision = {
            "depth": vdepth,
            "hidden_size": vwidth,
            "intermediate_size": 2 * vwidth,
            "num_heads": vheads,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": hidden,
            "num_position_embeddings": 256,
            "deepstack_visual_indexes": [0],
        }
    else:
        third = half // 3
        text["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": 1e6,
            "mrope_section": [half - 2 * third, third, third],
        }
        if family == "qwen2_vl":
            vision = {
                "depth": vdepth,
                "embed_dim": vwidth,
                "hidden_size": hidden,
                "mlp_ratio": 2,
                "num_heads": vheads,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
            }
        else:
            vision = {
                "depth": vdepth,
                "hidden_size": vwidth,
                "intermediate_size": 2 * vwidth,
                "num_heads": vheads,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "out_hidden_size": hidden,
                "window_size": 56,
                "fullatt_block_indexes": [vdepth - 1],
            }
    config = AutoConfig.for_model(
        family, text_config=text, vision_config=vision, **_token_ids(tokenizer)
    )
    config.tie_word_embeddings = False
    return config


def tiny_vlm(family: str, processor: Any, size: str = "tiny", seed: int = 0) -> Any:
    """A random ``AutoModelForImageTextToText`` of ``family`` sized for ``processor``."""
    import torch
    from transformers import AutoModelForImageTextToText

    config = tiny_config(family, processor.tokenizer, size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    return model
