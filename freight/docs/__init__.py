"""freight's man pages and shell completion, made from its argument parsers.

They are made when freight is packaged (specs/freight.spec runs
`python3 -m freight.docs OUTDIR`), so they always say what the installed
commands accept; nothing here is installed itself.
"""
