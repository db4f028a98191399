"""Datasets that need no files: synthetic blobs and scikit-learn's shipped sets."""

from __future__ import annotations

import numpy as np
from sklearn import datasets as skd


def blobs2d_arrays(seed: int = 42):
    """The OC-NN seed notebook's data, drawn exactly as there from ``RandomState(seed)``:
    x_train (10000, 2) = 0.3 * randn(5000, 2) shifted to +2 and -2; x_test (400, 2) the same law;
    x_outliers (200, 2) uniform on [-4, 4]^2."""
    rng = np.random.RandomState(seed)
    X = 0.3 * rng.randn(5000, 2)
    x_train = np.r_[X + 2, X - 2]
    X = 0.3 * rng.randn(200, 2)
    x_test = np.r_[X + 2, X - 2]
    x_outliers = rng.uniform(low=-4, high=4, size=(200, 2))
    return x_train, x_test, x_outliers


# name -> (loader, the normal class, what that class is). Anomalies are every other class.
SKLEARN_SETS = {
    "digits": (skd.load_digits, 0, "digit 0 (178 images, 8x8 = 64 features)"),
    "breast_cancer": (skd.load_breast_cancer, 1, "benign tumours (357; 212 malignant are anomalies)"),
    "wine": (skd.load_wine, 1, "cultivar 1 (71; 107 of cultivars 0 and 2 are anomalies)"),
}


def sklearn_arrays(name: str):
    """(X float64 (n, d), class labels (n,)) of a scikit-learn shipped dataset."""
    loader = SKLEARN_SETS[name][0]
    X, y = loader(return_X_y=True)
    return np.asarray(X, np.float64), np.asarray(y, np.int64)
