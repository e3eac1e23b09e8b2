"""MDiff4STR: the mask-diffusion decoder, its training noise, losses and samplers."""

from ocrkit.models.decoders.mdiff.decoder import MDiffDecoder, MDiffLayer
from ocrkit.models.decoders.mdiff.noise import (
    NOISE_STRATEGIES,
    STRATEGIES,
    mask_noise,
    replace_tokens,
)
from ocrkit.models.decoders.mdiff.sampling import SAMPLERS, Sampled, revise

__all__ = [
    "NOISE_STRATEGIES",
    "SAMPLERS",
    "STRATEGIES",
    "MDiffDecoder",
    "MDiffLayer",
    "Sampled",
    "mask_noise",
    "replace_tokens",
    "revise",
]
