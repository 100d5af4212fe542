"""Making freight's own packages (freight, freight-host) and the demo repository.

Development tooling for `make rpms`, `make demo` and the tests; not shipped.
"""
