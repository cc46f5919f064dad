"""Neural networks of cosmo-edge: per-modality encoders, attention fusion with QoM, classifiers.

Pure ``torch.nn``; no file or network I/O lives here.
"""
