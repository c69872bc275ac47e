"""Datasets: each yields a store, labels and splits."""

from hypergraph.datasets._base import Dataset, DatasetBundle, in_memory, stratified_split
from hypergraph.datasets._files import (
    ArrayDataset,
    CSVDataset,
    NpzDataset,
    ParquetDataset,
    bundle_from_arrays,
)
from hypergraph.datasets._images import ImageFolderBundle, ImageFolderDataset, ImageLoader
from hypergraph.datasets._mnist1d import MNIST1DDataset
from hypergraph.datasets._sklearn import (
    BreastCancerDataset,
    DiabetesDataset,
    DigitsDataset,
    IrisDataset,
    WineDataset,
)
from hypergraph.datasets._synthetic import SyntheticDataset

__all__ = [
    "ArrayDataset",
    "BreastCancerDataset",
    "CSVDataset",
    "Dataset",
    "DatasetBundle",
    "DiabetesDataset",
    "DigitsDataset",
    "ImageFolderBundle",
    "ImageFolderDataset",
    "ImageLoader",
    "IrisDataset",
    "MNIST1DDataset",
    "NpzDataset",
    "ParquetDataset",
    "SyntheticDataset",
    "WineDataset",
    "bundle_from_arrays",
    "in_memory",
    "stratified_split",
]
