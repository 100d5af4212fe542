"""The first stage: a container's manifest and its lock.

Takes a manifest YAML file (and the lock beside it); gives a checked `Manifest`
(every problem named with file, line and key; `freight schema` prints the JSON
Schema it is checked against) and the `Lock` that pins the exact packages a
build installs. Build-side only: it loads jsonschema, so hosts never import it.
"""
