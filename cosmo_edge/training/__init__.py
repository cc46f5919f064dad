"""Training: stage 1 (contrastive fusion), QoM, stage 2 (iterative fusion), the supervised baseline.

``pipeline`` runs the recipe on tensors prepared by ``data``; ``rundir`` writes a run directory;
``checkpoint`` saves and strictly loads plain-dict checkpoints. See docs/training.md.
"""
