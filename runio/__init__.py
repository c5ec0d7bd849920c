"""Shared I/O for every layer: atomic output files (temporary file, then rename). Imports nothing heavy."""

from runio.files import atomic_path, copy_file, save_figure, write_csv, write_json

__all__ = ["atomic_path", "copy_file", "save_figure", "write_csv", "write_json"]
