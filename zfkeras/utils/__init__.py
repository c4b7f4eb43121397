"""Small shared helpers (file I/O)."""

from zfkeras.utils.io import atomic_open, atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]
