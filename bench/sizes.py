"""The preset sizes of the bench (`--size`, `make bench SIZE=...`)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.repogen import Params


@dataclass(frozen=True)
class Size:
    repo: Params  # the repository the container is built from
    publish_repo: Params  # the repository figure 4 adds the container to (the "500 packages")
    reps: int  # repetitions per figure: fewer for larger sizes


SIZES = {
    "tiny": Size(Params(packages=4, files=60, megabytes=2), Params(packages=20, files=100, megabytes=2), 1),
    "small": Size(Params(packages=24, files=1_200, megabytes=30), Params(packages=500, files=5_000, megabytes=50), 7),
    "default": Size(Params(), Params(packages=500, files=25_000, megabytes=500), 5),
}
