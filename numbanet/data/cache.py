"""The per-user directory numbanet keeps datasets in (``~/.cache/numbanet`` on Linux)."""

from pathlib import Path


def user_cache_dir():
    """``platformdirs.user_cache_dir("numbanet")``, the directory ``pooch.os_cache("numbanet")`` names."""
    import platformdirs  # imported here: about 15 ms, and only the default directories need it

    return Path(platformdirs.user_cache_dir("numbanet"))
