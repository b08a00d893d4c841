"""openlms: an open-source reimplementation of LM Studio's headless system."""

__version__ = "0.1.0"
