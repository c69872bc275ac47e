"""Datasets: each yields a store, labels and splits."""

from hypergraph.datasets._base import Dataset, DatasetBundle, in_memory, stratified_split
from hypergraph.datasets._sklearn import DigitsDataset

__all__ = ["Dataset", "DatasetBundle", "DigitsDataset", "in_memory", "stratified_split"]
