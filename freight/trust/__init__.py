"""The third stage: who made a package, and proof that nobody changed it.

Takes RPMs and a GnuPG keyring; gives signing keys (made, listed, exported),
RPMs signed with rpmsign, and verdicts: a trusted signature present, digests
and payload intact, and for a container the manifest and lock it carries
describing this very package.
"""
