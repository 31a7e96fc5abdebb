"""Analyzers: batch of texts in, one typed result per text out (see docs/design.md)."""
