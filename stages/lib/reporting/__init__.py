"""Wording, figures and the report's answer: how numbers and verdicts are
said, and drawn.
"""
