"""cosmo-edge: real-time multimodal human activity recognition with Cosmo contrastive fusion."""

__version__ = "0.1.0"
