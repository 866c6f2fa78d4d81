"""Authorize Kometa's connections to the services it needs a person to sign in to, without copy-paste."""

__version__ = "0.1.0"
