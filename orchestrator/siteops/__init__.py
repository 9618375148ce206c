"""siteops: turn one Linux VPS into a host for many isolated web sites."""

__version__ = "0.1.0"
