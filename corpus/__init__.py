"""Repositories of real and of odd packages, made with the real tools, for the tests and the bench.

Not part of the installed freight: `corpus.treerpm` packs a folder as an RPM
with freight's own naming, `corpus.debian` turns Debian's own packages into a
cached yum repository of a real base set.
"""
