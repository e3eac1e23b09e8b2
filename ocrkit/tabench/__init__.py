"""TABench: text-anchoring benchmarks (Region-to-Text and Text-to-Region) for any model.

Q-Mask paper (Xu et al., arXiv 2604.00161), Section 4 and Supplementary S1. See docs/tabench.md.
"""

from ocrkit.tabench.adapters import ADAPTERS, Adapter, build_adapter
from ocrkit.tabench.matching import MatchResult, match_regions
from ocrkit.tabench.normalize import canonicalize, normalize_r2t
from ocrkit.tabench.schema import Query, load_bench, save_bench
from ocrkit.tabench.scoring import load_predictions, score

__all__ = [
    "ADAPTERS",
    "Adapter",
    "MatchResult",
    "Query",
    "build_adapter",
    "canonicalize",
    "load_bench",
    "load_predictions",
    "match_regions",
    "normalize_r2t",
    "save_bench",
    "score",
]
