"""The fourth stage: packages -> a yum repository hosts can trust.

Takes a folder of signed RPMs; gives repodata made by createrepo_c (only new
packages are read), a signed repomd.xml with the public key beside it, and
updateinfo advisories for rebuilt containers, swapped in atomically so readers
never see half a repository.
"""
