"""The MLX port. Importing this package first gives MLX an optimised BLAS on Linux (see
``cnn.mx.blas``), so every module of the port imports ``mlx`` only after it, and a buffer
cache large enough to reuse a training step's memory (``cnn.mx.allocator``)."""

from cnn.mx.allocator import raise_cache_limit
from cnn.mx.blas import load_optimized_blas

load_optimized_blas()
raise_cache_limit()  # imports mlx: after the BLAS
