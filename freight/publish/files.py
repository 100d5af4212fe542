"""The files a published repository holds besides packages and repodata/.

Named here, not in the publisher, so `freight repo-file` and `--help` texts
can name them without loading createrepo_c.
"""

KEY_FILE = "RPM-GPG-KEY-freight"  # the armored public key hosts import (the .repo file's gpgkey)
REPOMD_SIGNATURE = "repomd.xml.asc"  # in repodata/: the detached signature dnf and zypper check
REPOMD_KEY = "repomd.xml.key"  # in repodata/: the same public key, where zypper looks for a repository's key
