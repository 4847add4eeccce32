"""Deployed forms: how a trained run becomes a ``.tflite`` file (Larq
Compute Engine's conversion, int8 post-training quantization), what every
form shares (checks, records, answers), and what a converted graph holds.
"""
