"""Shared pytest fixtures; the helpers themselves live in ``helpers.py``."""

import numpy as np
import pytest

from helpers import FLOAT_DTYPES
from numbanet.data import cache


@pytest.fixture(autouse=True, scope="session")
def user_cache(tmp_path_factory):
    """Datasets cached per user go to a directory of the test session, never the real cache."""
    directory = tmp_path_factory.mktemp("user-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "user_cache_dir", lambda: directory)
        yield directory


@pytest.fixture(params=FLOAT_DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param
