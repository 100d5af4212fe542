"""Plumbing every stage shares: errors, logging, progress, the one `run()` for
subprocesses, atomic files, freight's directories, template rendering and the
one way dnf is opened. It imports nothing else of freight's, so anything may
import it, the host's installer hook included.
"""
