"""Authorize Kometa's MyAnimeList connection without copy-paste."""

__version__ = "0.1.0"
