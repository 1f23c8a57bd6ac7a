"""Fuzzing of the parsers that read what comes from outside: each input within a time budget, only documented errors."""
