"""Shared pytest fixtures; the helpers themselves live in ``helpers.py``."""

import numpy as np
import pytest

from helpers import FLOAT_DTYPES


@pytest.fixture(params=FLOAT_DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param
