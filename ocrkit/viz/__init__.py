"""Analysis plots for encoders: query-based attention maps (``ocrkit viz attention``)."""

from ocrkit.viz.attention import attention_map, draw_attention, parse_query

__all__ = ["attention_map", "draw_attention", "parse_query"]
