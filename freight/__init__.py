"""freight: build, sign, ship and run containers as RPMs."""

__version__ = "0.1.0"
