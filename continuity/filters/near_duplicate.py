"""Fingerprints of documents for finding near-duplicates: a MinHash sketch of word shingles.

The sketch is the bottom-k variant of MinHash (one hash function, the k smallest shingle
hashes kept) rather than k hash functions: it needs one hash per shingle instead of k, so a
long invoice is sketched in milliseconds in pure Python, and its Jaccard estimate is as
good (Broder 1997; Cohen and Kaplan 2007). A few lines of its own instead of a library
such as datasketch, which would bring numpy for this one computation. Only the sketch
(64 integers) is stored, never the document.
"""

from __future__ import annotations

import hashlib
import heapq
import unicodedata

SKETCH_SIZE = 64
SHINGLE_WORDS = 3


def _words(text: str) -> list[str]:
    """The text's words, case-folded: every character that is not a letter or digit separates words.

    A translation table of the distinct characters and str.split, rather than a regular
    expression: linear, and no new expression to vet for untrusted input.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return folded.translate({ord(char): " " for char in set(folded) if not char.isalnum()}).split()


def _shingle_hashes(text: str) -> set[int]:
    words = _words(text)
    if len(words) < SHINGLE_WORDS:
        words_joined = [" ".join(words)] if words else []
    else:
        words_joined = [" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)]
    return {
        int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "big") for shingle in words_joined
    }


def sketch(text: str, size: int = SKETCH_SIZE) -> tuple[int, ...]:
    """The bottom-k MinHash sketch of the text's word shingles, sorted (empty for empty text)."""
    return tuple(heapq.nsmallest(size, _shingle_hashes(text)))


def similarity(first: tuple[int, ...], second: tuple[int, ...], size: int = SKETCH_SIZE) -> float:
    """Estimated Jaccard similarity of the two documents' shingle sets.

    The k smallest hashes of the union are the k smallest of both sketches together; the
    share of them present in both sketches estimates the size of the intersection over that of the union.
    """
    if not first or not second:
        return 0.0
    a, b = set(first), set(second)
    union = heapq.nsmallest(size, a | b)
    return sum(1 for value in union if value in a and value in b) / len(union)
