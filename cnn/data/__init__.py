"""The framework-free data layer: datasets as uint8 numpy arrays, shared by PyTorch and MLX.

Only numpy, Pillow and the standard library are used here, so both framework sides import
this package unchanged and see the same images, splits, statistics and batch order.
"""

from cnn.data.batches import BatchPlan, channel_stats, split_train_val
from cnn.data.cifar import CifarData, read_cifar10, read_cifar100, write_cifar10, write_cifar100
from cnn.data.datasets import DATASETS, Dataset, DatasetSpec, ImageSet, get_spec, load_dataset
from cnn.data.fetch import cache_dir, extract_tar, locate
from cnn.data.idx import read_idx, read_idx_pair, write_idx
from cnn.data.images import load_image
from cnn.errors import DataError

__all__ = [
    "BatchPlan", "CifarData", "DATASETS", "DataError", "Dataset", "DatasetSpec", "ImageSet",
    "cache_dir", "channel_stats", "extract_tar", "get_spec", "load_dataset", "load_image",
    "locate", "read_cifar10", "read_cifar100", "read_idx", "read_idx_pair",
    "split_train_val", "write_cifar10", "write_cifar100", "write_idx",
]
