"""Benchmarks: the template's training path against a minimal hand-written PyTorch loop."""
