"""The files on a stage board that are not firmware code, by name: flash writes and keeps them,
ports and keys read them."""

MANIFEST = "sxctl.manifest"  # what the last flash wrote, with each file's SHA-256
IDENTITY = "identity.json"   # the board's bus address and serial number
