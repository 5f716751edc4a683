"""The image service (Glance v2), mounted at /image."""
