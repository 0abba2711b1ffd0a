"""Pure compiled loops: no validation, outputs written into arrays the caller passes.

Only :mod:`numbanet.ops` calls these; see ``numbanet/_config.py`` for the flags.
"""
