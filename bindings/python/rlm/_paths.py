"""_paths.py - where the librlm installed with this package lives.

This copy (the source tree's, and what pip installs) names no install. `cmake --install`
(`make install`) writes its own copy beside the installed package, naming librlm's directory
relative to the package, so an install that is moved as a whole still finds its library.
"""
import os

LIBDIR_RELATIVE = None  # librlm's directory, relative to this package's directory


def libdir(package_dir):
    """The install's library directory, or None when this package came from elsewhere."""
    if LIBDIR_RELATIVE is None:
        return None
    return os.path.normpath(os.path.join(package_dir, LIBDIR_RELATIVE))
