"""The pure side of the directory sync: records, the diff and the guard (no I/O)."""
