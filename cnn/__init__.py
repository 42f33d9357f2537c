"""One CNN, trained with PyTorch Lightning (``cnn.pt``) or MLX (``cnn.mx``) from one config.

``cnn.data`` and ``cnn.schema`` are the framework-free core both sides share.
"""

__version__ = "0.1.0"
