"""Benchmarks: medians of repeats and ratios against a baseline run side by side (``make bench``)."""
