"""The data: the datasets (files, checksums, loading), the corruptions of
their test images, and the robustness evaluation of a run on them.
"""
