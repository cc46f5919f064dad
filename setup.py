"""Packaging for cosmo-edge: a real-time multimodal activity-recognition daemon (Cosmo)."""

from setuptools import find_packages, setup

# Runtime requirements: lower bounds a Python 3.8 Jetson image can meet (see docs/platform notes).
RUNTIME_REQUIRES = [
    "numpy>=1.19",
    "scipy>=1.5",
    "scikit-learn>=0.24",
    "torch>=1.10",
    "pyserial>=3.4",
    "pyzmq>=22.0",
    "msgpack>=1.0",
    "pydantic>=2.0",
    "typing_extensions>=4.6",
    "PyYAML>=5.3",
    "tqdm>=4.50",
    "prometheus-client>=0.12",
    "onnx>=1.10",
    "onnxruntime>=1.10",
]

EXTRAS = {
    "realsense": ["pyrealsense2>=2.50"],
    "bench": ["matplotlib>=3.3"],
    "dev": [
        "pytest>=7",
        "hypothesis>=6",
        "ruff>=0.5",
        "matplotlib>=3.3",
        "pyrealsense2>=2.50",
    ],
}

setup(
    name="cosmo-edge",
    version="0.1.0",
    description="Real-time multimodal human activity recognition with Cosmo contrastive fusion",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    packages=find_packages(
        include=["cosmo_edge", "cosmo_edge.*", "drivers", "drivers.*", "models", "models.*"]
    ),
    package_data={"cosmo_edge": ["assets/*", "configs/*"], "drivers": ["radar_cfg/*.cfg"]},
    include_package_data=True,
    install_requires=RUNTIME_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["cosmo-edge=cosmo_edge.cli:main"]},
)
