"""freight's benchmarks: `make bench` (see bench.run).

Everything here measures freight against the floor, the cost that no tool
could avoid (dnf installing the packages, compressing the bytes once),
measured in the same run on the same data, so that noise from a busy machine
shows up on both sides of each ratio.
"""
