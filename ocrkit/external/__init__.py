"""External recognizers wrapped as ocrkit predictors, so they are scored like ocrkit's own."""
