"""The MLX port. Importing this package first gives MLX an optimised BLAS on Linux (see
``cnn.mx.blas``), so every module of the port imports ``mlx`` only after it."""

from cnn.mx.blas import load_optimized_blas

load_optimized_blas()
