"""The instructor side of the kit: plugin, probes, handles, reports, release builder and CLI."""

__version__ = "0.1.0"
